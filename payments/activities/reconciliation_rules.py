"""What reconciliation reads of Stripe's changes, and when a Stripe object and our row agree
without a closer look: pure rules, kept apart from the I/O that applies them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Required, TypedDict

from payments.schema.tables import (
    CAPTURED_PAYMENT_STATUSES,
    OPEN_PAYMENT_STATUSES,
    Dispute,
    Payout,
    Refund,
    Transaction,
)

Obj = dict[str, Any]  # a Stripe object as JSON
Row = Transaction | Refund | Payout | Dispute

# Rows not yet final, compared at every run whatever their age.
NOT_FINAL = {Transaction: OPEN_PAYMENT_STATUSES, Refund: ("pending",), Payout: ("pending", "in_transit")}

# The Events API types that say one of our kinds of object changed (at most 20: Stripe's limit
# for `types`). A refund's own events stand for `charge.refunded`, whose object is the charge.
CHANGES = {
    "payment_intent": (
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
    ),
    "refund": ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated"),
    "transfer": ("transfer.created", "transfer.updated", "transfer.reversed"),
    "dispute": (
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    ),
}
CHANGE_TYPES = [t for types in CHANGES.values() for t in types]
LISTS = {"payment_intent": "payment_intents", "refund": "refunds", "transfer": "transfers", "dispute": "disputes"}

# What authorize_payment writes on every PaymentIntent (older ones too): our payment and its merchant.
_OUR_TX, _OUR_MERCHANT = re.compile(r"^tx_[A-Za-z0-9]{1,60}$"), re.compile(r"^mer_[A-Za-z0-9]{1,60}$")


class Snapshot(TypedDict, total=False):
    """A changed object as an event shows it, with only the fields read before a closer look:
    its kind and id (`latest_changes`), our id in its metadata (`meta`), and what `agrees`
    compares. A page of events is decoded into these (stripe_reads), the rest of each object
    skipped; an object that differs is read back whole before anything is fixed."""

    id: Required[str]
    object: str
    metadata: dict[str, str] | None
    amount: int
    currency: str
    status: str
    amount_received: int


class _EventData(TypedDict):
    object: Snapshot


class _Event(TypedDict):
    id: str
    type: str
    data: _EventData


class Events(TypedDict):
    """A page of the Events API as reconciliation reads it."""

    data: list[_Event]
    has_more: bool


def meta(obj: Obj, key: str) -> str | None:
    """Our id in a Stripe object's metadata."""
    return (obj.get("metadata") or {}).get(key)


def carries_our_marker(intent: Obj) -> bool:
    """Made by this platform: another integration on the account (a POS, a second shop) may hold
    authorizations of its own, which are never ours to void."""
    return bool(_OUR_TX.match(meta(intent, "tx_id") or "") and _OUR_MERCHANT.match(meta(intent, "merchant_id") or ""))


def latest_changes(events: list[Obj]) -> list[tuple[str, Obj]]:
    """(kind, object as of its newest event) for each object that `events` (newest first) name."""
    kind_of = {t: kind for kind, types in CHANGES.items() for t in types}
    changed: dict[str, tuple[str, Obj]] = {}
    for event in events:
        obj = event["data"]["object"]
        kind = kind_of.get(event["type"])
        if kind is not None and obj.get("object") == kind and obj["id"] not in changed:
            changed[obj["id"]] = (kind, obj)
    return list(changed.values())


def settling(row: Row, margin: timedelta) -> bool:
    """Written within the margin: a row behind Stripe this young is a saga whose own write is
    still on its way, not a discrepancy to log or fix; a later run judges it."""
    return row.updated_at > datetime.now(UTC) - margin


# The columns of our row `agrees` reads, by kind: all that a page's rows are read for.
AGREEMENT_COLUMNS = {
    "payment_intent": ("amount", "stripe_payment_intent_id", "currency", "status", "amount_captured"),
    "refund": ("amount", "stripe_refund_id", "status"),
    "transfer": ("amount", "stripe_transfer_id", "status"),
    "dispute": ("amount", "status"),
}


def agrees(kind: str, obj: Obj, row: Any) -> bool:
    """The object of a kind (maybe a snapshot from an event) and our final row (its
    AGREEMENT_COLUMNS as a plain row, or our ORM object) say the same: nothing to look at. Anything else,
    even a row still on its way, gets the object read back and compared."""
    if row is None or obj["amount"] != row.amount:
        return False
    if kind == "payment_intent":
        return (
            obj["id"] == row.stripe_payment_intent_id
            and obj["currency"] == row.currency
            and (
                (
                    obj["status"] == "succeeded"
                    and row.status in CAPTURED_PAYMENT_STATUSES
                    and obj["amount_received"] == row.amount_captured
                )
                or (obj["status"] == "canceled" and row.status == "canceled")
                or (obj["status"] == "requires_payment_method" and row.status == "failed")
            )
        )
    if kind == "refund":
        return obj["id"] == row.stripe_refund_id and obj["status"] == row.status == "succeeded"
    if kind == "transfer":
        return obj["id"] == row.stripe_transfer_id and row.status == "paid"
    return bool(obj["status"] == row.status)
