"""One emulated Stripe platform account: its objects, events, webhooks, faults and settings."""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stripe_emulator.faults import Faults
from stripe_emulator.idempotency import IdempotencyStore
from stripe_emulator.objects import build
from stripe_emulator.store import Obj, Store
from stripe_emulator.webhooks import WebhookSender
from stripe_emulator.wire import missing

# The request being served, for the `request` field of the events it causes.
current_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("current_request", default=None)
# The emulator's base URL as the client reached it: where the pages it links to are served.
current_origin: contextvars.ContextVar[str] = contextvars.ContextVar("current_origin", default="http://127.0.0.1:12111")


@dataclass
class Fees:
    """Stripe's standard US pricing for a standard account: 2.9 % + 30 cents per successful card
    charge (kept on a refund) and a 15.00 dispute fee. The control API (`/_emulator/fees`) or
    `--fee-bps`/`--fee-fixed` change it."""

    bps: int = 290
    fixed: int = 30
    dispute: int = 1500  # Stripe's US dispute fee, in cents

    def on(self, amount: int) -> int:
        return amount * self.bps // 10_000 + self.fixed if amount else 0


def new_event(event_type: str, obj: Obj, previous: dict[str, Any] | None = None, pending_webhooks: int = 0) -> Obj:
    """An event about `obj` as it is now (later changes are later events), caused by the request
    being served, if any."""
    data: dict[str, Any] = {"object": orjson.loads(orjson.dumps(obj))}  # a copy, faster than a deep one
    if previous:
        data["previous_attributes"] = previous
    return build(
        "event",
        "evt",
        type=event_type,
        data=data,
        api_version="2026-10-28",
        request=dict(current_request.get() or {"id": None, "idempotency_key": None}),
        pending_webhooks=pending_webhooks,
    )


def new_balance_transaction(
    kind: str,
    source: str,
    amount: int,
    currency: str,
    fee: int = 0,
    category: str | None = None,
    fee_description: str = "Stripe processing fees",
) -> Obj:
    """A balance transaction, not yet booked (Emulator.balance_transaction books one)."""
    txn = build(
        "balance_transaction",
        "txn",
        type=kind,
        reporting_category=category or kind,
        source=source,
        amount=amount,
        fee=fee,
        fee_details=[
            {
                "amount": fee,
                "currency": currency,
                "description": fee_description,
                "type": "stripe_fee",
                "application": None,
            }
        ]
        if fee
        else [],
        net=amount - fee,
        currency=currency,
        status="available",
        description=None,
    )
    txn["available_on"] = txn["created"]
    return txn


class Emulator:
    def __init__(
        self,
        state_file: Path | None = None,
        idempotency_ttl_seconds: float = 24 * 3600,
        fees: Fees | None = None,
    ) -> None:
        self.store = Store(state_file)
        self.idempotency = IdempotencyStore(idempotency_ttl_seconds, self.store.db)
        self.faults = Faults()
        self.webhooks = WebhookSender()
        self.fees = fees or Fees()
        self._available: dict[str, int] = {}
        for txn_id in self.store.ids_of("balance_transaction"):
            if txn := self.store.get(txn_id):
                self._add_available(txn)

    def _add_available(self, txn: Obj) -> None:
        self._available[txn["currency"]] = self._available.get(txn["currency"], 0) + txn["net"]

    @staticmethod
    def now() -> int:
        return int(time.time())

    def find(self, kind: str, object_id: str, param: str = "id") -> Obj:
        obj = self.store.get(object_id)
        if obj is None or obj["object"] != kind:
            raise missing(kind, object_id, param)
        return obj

    def emit(self, event_type: str, obj: Obj, previous: dict[str, Any] | None = None, deliver: bool = True) -> Obj:
        """Record an event for a change and queue it for every webhook endpoint (`deliver=False`:
        recorded and listable, but its webhook is lost on the way, for tests of that case)."""
        pending = sum(e.wants(event_type) for e in self.webhooks.endpoints) if deliver else 0
        event = new_event(event_type, obj, previous, pending)
        self.store.put(event)
        if deliver:
            self.webhooks.deliver(event)
        return event

    def balance_transaction(
        self,
        kind: str,
        source: str,
        amount: int,
        currency: str,
        fee: int = 0,
        category: str | None = None,
        fee_description: str = "Stripe processing fees",
    ) -> Obj:
        """Money moved in the platform's balance: recorded, and available at once."""
        txn = new_balance_transaction(kind, source, amount, currency, fee, category, fee_description)
        self._add_available(txn)
        return self.store.put(txn)

    def book_balance_transactions(self, txns: list[Obj]) -> None:
        """Many at once (bulk seeding): one SQLite transaction."""
        for txn in txns:
            self._add_available(txn)
        self.store.put_many(txns)

    def available(self) -> dict[str, int]:
        """The platform's available balance per currency (everything settles at once here)."""
        return dict(self._available)

    def reset(self) -> None:
        self.store.reset()
        self._available.clear()
        self.idempotency.clear()
        self.faults.clear()
        self.webhooks.clear_log()
