"""When a Stripe object and our row agree without a closer look, by the object's kind: the row is
read as the table's plain columns (no ORM object), so the rule goes by kind, not by class."""

from types import SimpleNamespace

from payments.activities.reconciliation_rules import AGREEMENT_COLUMNS, agrees

INTENT = {"id": "pi_1", "amount": 1000, "currency": "usd", "status": "succeeded", "amount_received": 1000}


def payment(**changed: object) -> SimpleNamespace:
    row = {"amount": 1000, "currency": "usd", "status": "confirmed", "amount_captured": 1000}
    return SimpleNamespace(**(row | {"stripe_payment_intent_id": "pi_1"} | changed))


def test_a_captured_payment_agrees_only_with_its_own_intent_and_amounts() -> None:
    assert agrees("payment_intent", INTENT, payment())
    assert not agrees("payment_intent", INTENT, payment(status="authorized"))  # behind Stripe
    assert not agrees("payment_intent", INTENT, payment(amount_captured=900))
    assert not agrees("payment_intent", INTENT, payment(stripe_payment_intent_id="pi_2"))
    assert not agrees("payment_intent", INTENT | {"currency": "eur"}, payment())
    assert not agrees("payment_intent", INTENT, None)  # no row of ours
    canceled = INTENT | {"status": "canceled", "amount_received": 0}
    assert agrees("payment_intent", canceled, payment(status="canceled"))


def test_refunds_transfers_and_disputes_agree_by_their_own_fields() -> None:
    refund = {"id": "re_1", "amount": 500, "status": "succeeded"}
    assert agrees("refund", refund, SimpleNamespace(amount=500, status="succeeded", stripe_refund_id="re_1"))
    assert not agrees("refund", refund, SimpleNamespace(amount=500, status="pending", stripe_refund_id="re_1"))
    transfer = {"id": "tr_1", "amount": 700}
    assert agrees("transfer", transfer, SimpleNamespace(amount=700, status="paid", stripe_transfer_id="tr_1"))
    assert not agrees("transfer", transfer, SimpleNamespace(amount=700, status="in_transit", stripe_transfer_id="tr_1"))
    dispute = {"id": "dp_1", "amount": 1000, "status": "lost"}
    assert agrees("dispute", dispute, SimpleNamespace(amount=1000, status="lost"))
    assert not agrees("dispute", dispute, SimpleNamespace(amount=1000, status="needs_response"))
    assert not agrees("dispute", dispute, SimpleNamespace(amount=900, status="lost"))


def test_a_row_of_only_the_agreement_columns_is_enough_to_agree() -> None:
    """A page's rows are read with AGREEMENT_COLUMNS alone: a rule that read another column would
    raise here instead of reconciling on a column it was never given."""
    objects = {
        "payment_intent": INTENT,
        "refund": {"id": "re_1", "amount": 1000, "status": "succeeded"},
        "transfer": {"id": "tr_1", "amount": 1000},
        "dispute": {"id": "dp_1", "amount": 1000, "status": "lost"},
    }
    values: dict[str, object] = {
        "amount": 1000,
        "currency": "usd",
        "amount_captured": 1000,
        "stripe_payment_intent_id": "pi_1",
        "stripe_refund_id": "re_1",
        "stripe_transfer_id": "tr_1",
    }
    statuses = {"payment_intent": "confirmed", "refund": "succeeded", "transfer": "paid", "dispute": "lost"}
    for kind, columns in AGREEMENT_COLUMNS.items():
        given = values | {"status": statuses[kind]}
        row = SimpleNamespace(**{name: given[name] for name in columns})
        assert agrees(kind, objects[kind], row), kind
