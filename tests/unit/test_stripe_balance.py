"""The daily balance check's judgement: Stripe may be behind the ledger by what is in flight, never
ahead of it; top-ups are Stripe's money the ledger does not hold."""

from payments.activities.stripe_balance import judged


def test_equal_balances_leave_nothing_unexplained() -> None:
    assert judged("usd", 10_000, 0, 10_000, 0).unexplained == 0


def test_top_ups_are_explained() -> None:
    assert judged("usd", 15_000, 5_000, 10_000, 0).unexplained == 0


def test_stripe_behind_by_what_is_in_flight_is_explained_and_no_more() -> None:
    assert judged("usd", 9_000, 0, 10_000, 1_000).unexplained == 0
    assert judged("usd", 8_500, 0, 10_000, 1_000).unexplained == -500


def test_stripe_ahead_is_never_explained_by_what_is_in_flight() -> None:
    assert judged("usd", 10_300, 0, 10_000, 1_000).unexplained == 300
