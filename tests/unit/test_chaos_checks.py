"""The chaos run's checks see the end state of issue 25: Stripe captured a payment our row still
calls authorized (a confirm lost after the capture); and a payment whose client walked away after
its confirm is expected confirmed, without the refunds it never asked for."""

from devstack.money_checks import StripeState, declines, payment_intents
from devstack.workload import PaymentPlan, Plan, Tally, end_states
from payments.schema.tables import Transaction

TX = "tx_" + "0" * 32


def _row(status: str, captured: int) -> Transaction:
    return Transaction(
        id=TX, status=status, amount=5_000, amount_captured=captured, amount_refunded=0, stripe_payment_intent_id="pi_1"
    )


def _stripe(status: str, received: int) -> dict[str, object]:
    return {"id": "pi_1", "status": status, "amount": 5_000, "amount_received": received, "metadata": {"tx_id": TX}}


def test_a_capture_at_stripe_whose_row_says_authorized_is_a_violation() -> None:
    captured = StripeState(intents=[_stripe("succeeded", 5_000)], refunds=[], transfers=[], captures={"pi_1": 1})
    assert payment_intents({TX: _row("authorized", 0)}, captured).violations == [
        f"{TX}: Stripe amount/received 5000/5000, ours 5000/0"
    ]
    assert payment_intents({TX: _row("confirmed", 5_000)}, captured).violations == []


def test_a_payment_whose_client_walked_away_after_its_confirm_is_expected_confirmed_without_refunds() -> None:
    payment = PaymentPlan(number=0, kind="refund_full", user=0, merchant=0, amount=5_000, inits=1)
    plan, tally = Plan(seed=1, users=1, merchants=1, payments=[payment], payouts=[]), Tally()
    tally.accepted[0] = TX
    assert end_states(plan, tally, {TX: _row("confirmed", 5_000)}).violations != []  # a refund was planned
    tally.walked_away.add(TX)
    assert end_states(plan, tally, {TX: _row("confirmed", 5_000)}).violations == []
    assert end_states(plan, tally, {TX: _row("authorized", 0)}).violations != []


def test_a_payment_has_one_declined_event_per_card_declined_while_another_could_follow() -> None:
    def row(status: str, attempts: int, code: str | None = None) -> Transaction:
        return Transaction(id=TX, status=status, card_attempts=attempts, failure_code=code)

    assert declines(row("declined", 2)) == 2  # open: each card so far was declined
    assert declines(row("confirmed", 3)) == 2  # the third card paid
    assert declines(row("failed", 3, "expired_card")) == 2  # the last card's decline is payment.failed
    assert declines(row("failed", 1, "generic_decline")) == 0  # one card only (before retries)
    assert declines(row("failed", 2, "requested_by_customer")) == 2  # given up after two declines
