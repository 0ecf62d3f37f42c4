"""The `payments` command: migrate, worker, api, token, demo, reconcile, report, inspect, events,
webhook-listen, backup. The local stack (`python -m devstack`) and the fault runs (`python -m chaos`) are
tooling, outside the product."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from typing import NoReturn

from payments.config.logs import configure_logging
from payments.config.settings import Settings


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from payments.schema.migrate import upgrade

    if not settings.database_url:
        print("PAYMENTS_DATABASE_URL is not set.", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    print("database migrated to head")
    return 0


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    import uvloop

    from payments.config.tracing import start_tracing
    from payments.workers.worker import run_worker

    start_tracing("payments-worker", settings.otel_exporter_otlp_endpoint)
    # libuv's loop, as the API's: the worker's event loop wakes for every poll, RPC answer and
    # database round trip, and asyncio's own loop costs more CPU per wake-up.
    uvloop.run(run_worker(settings))
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from payments.api.app import UVICORN_OPTIONS

    settings.refuse_unsafe_configuration()  # here, not only in each process: refused once, not respawned
    workers = args.workers or settings.api_workers
    app = "payments.api.app:app_from_environment"  # each process builds its own app (and Temporal client)
    uvicorn.run(app, factory=True, workers=workers, host=settings.api_host, port=settings.api_port, **UVICORN_OPTIONS)
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from payments.api.auth import mint_token

    print(mint_token(settings, args.sub, args.role))
    return 0


def _demo(settings: Settings, _: argparse.Namespace) -> int:
    import httpx

    from payments.cli.demo import DemoFailed, run_demo

    if settings.env != "development":
        print("The demo fills a development stack only: source .devstack/env (or set PAYMENTS_ENV=development).")
        return 2
    configure_logging("WARNING", json=False)  # what it made is the output
    print(f"Filling the stack at {settings.api_url} ...", flush=True)
    try:
        path = run_demo(settings)
    except httpx.TransportError as exc:
        print(f"The API at {settings.api_url} does not answer ({exc}): is `make dev` running?", file=sys.stderr)
        return 1
    except DemoFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    made = [line.removeprefix("export ") for line in path.read_text().splitlines() if "TOKEN=" not in line]
    print("\n".join(made[1:]))
    print(f"Two merchants, two users, a payment in each state, a payout; ids and tokens: source {path}")
    return 0


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from payments.cli.reconcile import reconcile

    counts = asyncio.run(reconcile(settings, args.since, args.until, args.poll))
    return 1 if counts.get("needs_review") else 0


def _inspect(settings: Settings, args: argparse.Namespace) -> int:
    from payments.cli.inspect import inspect_payment
    from payments.config.local_stack import local_settings

    configure_logging("WARNING", json=False)  # the timeline is the output, not the Stripe calls behind it
    try:
        return asyncio.run(inspect_payment(local_settings(settings), args.tx_id, args.json))
    except OSError as exc:
        return _no_database(exc)


def _no_database(exc: OSError) -> int:
    hint = "is `make dev` running? Else set PAYMENTS_DATABASE_URL."
    print(f"PostgreSQL does not answer ({exc}): {hint}", file=sys.stderr)
    return 1


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from payments.cli.report import month_end_report
    from payments.config.local_stack import local_settings

    configure_logging("WARNING", json=False)  # the CSV is the output
    try:
        return asyncio.run(month_end_report(local_settings(settings), args.month))
    except OSError as exc:
        print(
            f"PostgreSQL does not answer ({exc}): is `make dev` running? Else set PAYMENTS_DATABASE_URL.",
            file=sys.stderr,
        )
        return 1


def _month(value: str) -> str:
    from payments.schema.statements import month_bounds

    try:
        month_bounds(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month like 2026-11") from None
    return value


def _webhook_listen(settings: Settings, args: argparse.Namespace) -> int:
    from payments.cli.merchant_webhook_listen import listen

    return listen(settings, args.port, args.secret, args.merchant, args.events)


def _events_republish(settings: Settings, args: argparse.Namespace) -> int:
    from payments.cli.republish import republish
    from payments.config.local_stack import local_settings

    configure_logging("WARNING", json=False)  # the figures are the output
    try:
        read, added = asyncio.run(republish(local_settings(settings), args.since))
    except OSError as exc:
        return _no_database(exc)
    print(f"{read} outbox events since {args.since.isoformat()}: {added} added, {read - added} already in the stream")
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from payments.cli import backups

    if args.action == "restore":
        if args.into is None:
            print("restore needs --into DIR (a new data directory)", file=sys.stderr)
            return 2
        return backups.restore(settings, Path(args.into), args.to_time, args.backup_id)
    if args.action == "verify":
        return backups.verify(settings, args.backup_id)
    return backups.take(settings) if args.action == "take" else backups.list_backups(settings)


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payments", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    commands.add_parser("worker", help="run the Temporal worker").set_defaults(run=_worker)
    api = commands.add_parser("api", help="run the HTTP API")
    api.add_argument("--workers", type=int, help="API processes (default: PAYMENTS_API_WORKERS, 1)")
    api.set_defaults(run=_api)
    demo = commands.add_parser("demo", help="fill a running dev stack; ids and tokens in .devstack/demo.env")
    demo.set_defaults(run=_demo)
    token = commands.add_parser("token", help="mint a local JWT (HS256 secret from settings)")
    token.add_argument("--sub", required=True, help="subject: a user, merchant or operator id")
    token.add_argument("--role", required=True, choices=["user", "merchant", "operator"])
    token.set_defaults(run=_token)
    recon = commands.add_parser("reconcile", help="reconcile a window now, with progress; exit 1 if any needs review")
    recon.add_argument("--since", type=_utc, help="window start, ISO 8601 (default: until - the interval)")
    recon.add_argument("--until", type=_utc, help="window end, ISO 8601 (default: now)")
    recon.add_argument("--poll", type=float, default=0.5, help="seconds between progress redraws (default: 0.5)")
    recon.set_defaults(run=_reconcile)
    inspect = commands.add_parser("inspect", help="a payment's timeline: status, events, ledger, Stripe")
    inspect.add_argument("tx_id", help="tx_…")
    inspect.add_argument("--json", action="store_true", help="the same JSON as GET /payments/{tx_id}/timeline")
    inspect.set_defaults(run=_inspect)
    report = commands.add_parser("report", help="the month-end report (CSV): volume, fees, payouts, owed")
    report.add_argument("--month", type=_month, required=True, help="YYYY-MM, UTC")
    report.set_defaults(run=_report)
    events = commands.add_parser("events", help="the payments.events stream").add_subparsers(required=True)
    republish = events.add_parser("republish", help="send the outbox's events from a time again (Redis lost its data)")
    republish.add_argument("--since", type=_utc, required=True, help="ISO 8601, e.g. 2026-12-01T00:00:00Z")
    republish.set_defaults(run=_events_republish)
    hooks = commands.add_parser("webhook-listen", help="a local webhook receiver printing verified events")
    hooks.add_argument("--port", type=int, default=8787, help="where it listens on 127.0.0.1 (0: any free port)")
    hooks.add_argument("--secret", help="the endpoint's whsec_… secret (an endpoint you registered)")
    hooks.add_argument("--merchant", help="mer_…: register this receiver as the merchant's endpoint (deleted on exit)")
    hooks.add_argument("--events", nargs="+", default=["*"], help="event types to subscribe to (default: all)")
    hooks.set_defaults(run=_webhook_listen)
    backup = commands.add_parser("backup", help="PostgreSQL's backups (Barman): take, list, verify, restore")
    backup.add_argument("action", choices=["take", "list", "verify", "restore"])
    backup.add_argument("backup_id", nargs="?", default="latest", help="verify/restore: a backup id (default: latest)")
    backup.add_argument("--into", help="restore: the new data directory to restore into")
    backup.add_argument("--to-time", type=_utc, help="restore: replay up to this moment, ISO 8601 (default: the last)")
    backup.set_defaults(run=_backup)
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        return int(args.run(settings, args))
    except KeyboardInterrupt:
        return 130


def leave(code: int) -> NoReturn:
    """Exit without interpreter teardown: a Temporal client's Rust threads can call into a
    finalizing interpreter and abort the process after its work is done (`Fatal Python error:
    PyGILState_Release`, exit 134: temporalio/sdk-python#300)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run() -> None:
    """The `payments` entry point."""
    leave(main())


if __name__ == "__main__":
    run()
