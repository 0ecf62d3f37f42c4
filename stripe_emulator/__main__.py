"""`python -m stripe_emulator --port 12111 [--state-file F] [--webhook-url U --webhook-secret S
--webhook-events T1,T2]`."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from payments.config.logs import configure_logging
from stripe_emulator.app import create_app
from stripe_emulator.emulator import Emulator, Fees
from stripe_emulator.webhooks import Endpoint


def main() -> None:
    parser = argparse.ArgumentParser(prog="stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--state-file", type=Path, help="keep state in this SQLite file across restarts")
    parser.add_argument("--idempotency-ttl-hours", type=float, default=24.0)
    parser.add_argument("--fee-bps", type=int, default=Fees.bps, help="Stripe processing fee on captures, in bps")
    parser.add_argument("--fee-fixed", type=int, default=Fees.fixed, help="fixed fee per capture, minor units")
    parser.add_argument("--webhook-url", help="deliver signed events to this endpoint")
    parser.add_argument("--webhook-secret", default="whsec_dev_only")
    parser.add_argument("--webhook-events", default="*", help="comma-separated event types the endpoint receives")
    args = parser.parse_args()

    emulator = Emulator(args.state_file, args.idempotency_ttl_hours * 3600, Fees(args.fee_bps, args.fee_fixed))
    if args.webhook_url:
        emulator.webhooks.endpoints.append(
            Endpoint(args.webhook_url, args.webhook_secret, tuple(args.webhook_events.split(",")))
        )
    configure_logging("WARNING")  # JSON, like every process of the stack
    uvicorn.run(create_app(emulator), host=args.host, port=args.port, log_config=None)


if __name__ == "__main__":
    main()
