"""The fee arithmetic of captures and refunds: pure integers, so checked exhaustively here."""

import pytest

from payments.activities.ledger import capture_entries, platform_fee, refund_entries, refunded_fee


@pytest.mark.parametrize("captured", [1, 7, 999, 1000, 2501])
@pytest.mark.parametrize("fee_bps", [0, 1, 250, 290, 10_000])
def test_refunding_everything_in_parts_returns_exactly_the_whole_fee(captured: int, fee_bps: int) -> None:
    fee = platform_fee(captured, fee_bps)
    for parts in ([captured], [1] * min(captured, 50) + [captured - min(captured, 50)], [captured // 3] * 3):
        parts = [p for p in parts if p] + ([captured - sum(parts)] if sum(parts) < captured else [])
        refunded, returned = 0, 0
        for part in parts:
            returned += refunded_fee(fee, captured, refunded, part)
            refunded += part
        assert refunded == captured and returned == fee


def test_a_full_refund_leaves_every_account_where_it_was() -> None:
    sale = capture_entries("m", 1000, platform_fee(1000, 290))
    refund = refund_entries("m", 1000, refunded_fee(29, 1000, 0, 1000))
    accounts = sale.keys() | refund.keys()
    assert {a: sale.get(a, 0) + refund.get(a, 0) for a in accounts} == dict.fromkeys(accounts, 0)


def test_every_posting_sums_to_zero() -> None:
    assert sum(capture_entries("m", 2501, 62).values()) == 0
    assert sum(refund_entries("m", 333, 8).values()) == 0


def test_a_partial_refund_returns_the_fee_pro_rata_rounded_down() -> None:
    assert refunded_fee(24, 999, 0, 333) == 8  # 24 * 333 / 999 = 8.0
    assert refunded_fee(25, 1000, 0, 10) == 0  # 0.25 rounds down; the running total catches up later
    assert refunded_fee(25, 1000, 10, 990) == 25
