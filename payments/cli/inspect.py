"""`payments inspect tx_…`: a payment's timeline (payments/api/timeline.py), read straight from PostgreSQL
and Stripe, so it works while the API is down."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from payments.api.timeline import payment_timeline
from payments.config.settings import Settings
from payments.config.stripe_client import stripe_client, stripe_http
from payments.schema.database import create_engine, session_factory
from payments.schema.tables import Transaction


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _line(entry: dict[str, Any]) -> str:
    details = {key: value for key, value in entry.items() if key not in ("at", "kind")}
    return f"{_iso(entry['at'])}  {entry['kind']:<8} {json.dumps(details, default=_iso)}"


async def inspect_payment(settings: Settings, tx_id: str, as_json: bool) -> int:
    assert settings.database_url, "the CLI falls back to the local stack's"
    engine, http = create_engine(settings.database_url, 1), stripe_http(settings)
    try:
        async with session_factory(engine)() as session:
            tx = await session.get(Transaction, tx_id)
            if tx is None:
                print(f"no payment {tx_id}")
                return 1
            timeline = await payment_timeline(session, stripe_client(settings, http), tx)
    finally:
        await http.close_async()
        await engine.dispose()
    if as_json:
        print(json.dumps(timeline, default=_iso, indent=2))
    else:
        print(f"{timeline['tx_id']}  workflow {timeline['workflow_id']}")
        print("\n".join(_line(entry) for entry in timeline["data"]))
    return 0
