"""Reconciliation decodes Stripe's list pages into only the fields it reads (stripe_reads): a
field a rule reads and the shape leaves out would be missing from every object of a run. Each
shape is decoded here from Stripe's own objects (the emulator's fixtures, Stripe's fixtures3.json)
and must lead to what the whole object leads to."""

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from payments.activities.reconciliation_rules import AGREEMENT_COLUMNS, Events, agrees, latest_changes, meta
from payments.activities.reconciliation_settlement import BalanceTransactions
from payments.activities.stripe_reads import _decoder

FIXTURES = json.loads((Path(__file__).parents[2] / "stripe_emulator" / "fixtures.json").read_text())
OURS = {"tx_id": "tx_1", "merchant_id": "mer_1", "refund_id": "rf_1", "payout_id": "po_1"}
# Each kind as a final row of ours would agree with it.
AGREEING = {
    "payment_intent": {"status": "succeeded", "amount_received": 1000},
    "refund": {"status": "succeeded"},
    "transfer": {},
    "dispute": {"status": "lost"},
}
STATUSES = {"payment_intent": "confirmed", "refund": "succeeded", "transfer": "paid", "dispute": "lost"}


def page(*objects: dict[str, Any]) -> bytes:
    return json.dumps({"object": "list", "url": "/v1/x", "has_more": True, "data": list(objects)}).encode()


def whole(kind: str) -> dict[str, Any]:
    return FIXTURES[kind] | {"amount": 1000, "currency": "usd", "metadata": OURS} | AGREEING[kind]


def agreeing_row(kind: str, obj: dict[str, Any]) -> SimpleNamespace:
    values = {
        "amount": obj["amount"],
        "currency": obj.get("currency"),
        "amount_captured": obj.get("amount_received"),
        "status": STATUSES[kind],
        f"stripe_{kind}_id": obj["id"],
    }
    return SimpleNamespace(**{column: values.get(column) for column in AGREEMENT_COLUMNS[kind]})


@pytest.mark.parametrize("kind", sorted(AGREEING))
def test_an_event_page_decoded_to_its_snapshots_leads_where_the_whole_page_does(kind: str) -> None:
    obj = whole(kind)
    event = FIXTURES["event"] | {"id": "evt_1", "type": f"{kind}.updated", "data": {"object": obj}}
    if kind == "payment_intent":
        event["type"] = "payment_intent.succeeded"
    if kind == "dispute":
        event["type"] = "charge.dispute.closed"
    body = page(event)
    full, shaped = json.loads(body), _decoder(Events).decode(body)
    assert shaped["has_more"] and shaped["data"][0]["id"] == "evt_1"
    [(found_kind, snapshot)] = latest_changes(shaped["data"])
    assert (
        [(k, o["id"]) for k, o in latest_changes(full["data"])] == [(found_kind, snapshot["id"])] == [(kind, obj["id"])]
    )
    assert len(json.dumps(snapshot)) < len(json.dumps(obj)) / 2  # the rest of the object is skipped
    for key in OURS:
        assert meta(snapshot, key) == meta(obj, key) == OURS[key]
    row = agreeing_row(kind, obj)
    assert agrees(kind, snapshot, row) and agrees(kind, obj, row)
    for column in AGREEMENT_COLUMNS[kind]:  # and a row differing in any column disagrees with both
        value = getattr(row, column)
        other = SimpleNamespace(**(vars(row) | {column: value + 1 if isinstance(value, int) else f"{value}x"}))
        assert agrees(kind, snapshot, other) == agrees(kind, obj, other)


def test_a_settlement_page_keeps_what_the_match_reads_of_each_balance_transaction_and_its_charge() -> None:
    charge = FIXTURES["charge"] | {"metadata": OURS, "payment_intent": "pi_1"}
    txn = FIXTURES["balance_transaction"] | {"amount": 1000, "fee": 59, "net": 941, "source": charge}
    unexpanded = FIXTURES["balance_transaction"] | {"id": "txn_2", "source": "ch_2"}
    shaped = _decoder(BalanceTransactions).decode(page(txn, unexpanded))
    first, second = shaped["data"]
    assert {k: first[k] for k in ("id", "amount", "fee", "net", "available_on")} == {
        k: txn[k] for k in ("id", "amount", "fee", "net", "available_on")
    }
    assert first["source"] == {"payment_intent": "pi_1", "metadata": OURS}
    assert second["source"] == "ch_2" and shaped["has_more"]
