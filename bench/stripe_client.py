"""The Stripe SDK's HTTP client, measured alone: the CPU our process spends on a payment's two calls
(a PaymentIntent created and confirmed, then captured with its balance transaction expanded, as
the worker makes them) through the client we use (aiohttp, payments/config/stripe_client.py) and
through the SDK's httpx client, against an emulator of its own, in interleaved rounds so that the
machine's drift falls on both alike.

    .venv/bin/python -m bench.stripe_client                 # 400 payments a round, 3 rounds each
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Callable

import stripe

from bench.stats import loadavg, machine_speed
from devstack.ports import wait_listening
from payments.config.ports import free_port
from payments.config.stripe_client import EMULATOR_KEY, StripeHTTP

WARM_UP = 20  # payments before the timing: connections open, code paths loaded
CLIENTS: dict[str, Callable[[], stripe.HTTPClient]] = {
    "aiohttp (ours)": lambda: StripeHTTP(10),
    "httpx": lambda: stripe.HTTPXClient(timeout=10),
}


async def cpu_ms_per_payment(base: str, make_client: Callable[[], stripe.HTTPClient], payments: int, tag: str) -> float:
    http = make_client()
    sdk = stripe.StripeClient(EMULATOR_KEY, base_addresses={"api": base}, max_network_retries=0, http_client=http)

    async def payment(i: int) -> None:
        intent = await sdk.v1.payment_intents.create_async(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "capture_method": "manual",
                "metadata": {"tx_id": f"tx_{tag}_{i}"},
            },
            options={"idempotency_key": f"{tag}:{i}:authorize"},
        )
        await sdk.v1.payment_intents.capture_async(
            intent.id,
            params={"expand": ["latest_charge.balance_transaction"]},
            options={"idempotency_key": f"{tag}:{i}:capture"},
        )

    try:
        for i in range(WARM_UP):
            await payment(-1 - i)
        started = time.process_time()
        for i in range(payments):
            await payment(i)
        return 1000 * (time.process_time() - started) / payments
    finally:
        await http.close_async()


async def compare(base: str, payments: int, rounds: int) -> None:
    seen: dict[str, list[float]] = {name: [] for name in CLIENTS}
    for round_ in range(rounds):
        for name, make_client in CLIENTS.items():
            seen[name].append(await cpu_ms_per_payment(base, make_client, payments, f"r{round_}{name[:5]}"))
    print(f"CPU ms of our process per payment (two Stripe calls), {payments} payments a round:")
    for name, figures in seen.items():
        shown = ", ".join(f"{f:.2f}" for f in figures)
        print(f"  {name:<16} {shown}   mean {sum(figures) / len(figures):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.stripe_client", description=__doc__)
    parser.add_argument("--payments", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(loadavg())
    print(machine_speed())
    port = free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, "the Stripe emulator")
        asyncio.run(compare(f"http://127.0.0.1:{port}", args.payments, args.rounds))
    finally:
        emulator.terminate()
        emulator.wait()


if __name__ == "__main__":
    main()
