"""Search attributes operators filter on in the Temporal UI. Ids, amounts and statuses only:
they are stored unencrypted, so never a token, a name or a secret."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# Every payment's and refund's workflow: the one lookup by payment (its workflow ids hold the key).
TX_ID = SearchAttributeKey.for_keyword("TxId")
# A refund's workflow carries the payment's status once it is recorded (the payment's own workflow
# has closed by then): `TxId="tx_…" AND PaymentStatus="refunded"` finds a refunded payment.
PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
USER_ID = SearchAttributeKey.for_keyword("UserId")
MERCHANT_ID = SearchAttributeKey.for_keyword("MerchantId")
AMOUNT_MINOR = SearchAttributeKey.for_int("AmountMinor")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
PAYOUT_PERIOD = SearchAttributeKey.for_keyword("PayoutPeriod")
PAYOUT_STATUS = SearchAttributeKey.for_keyword("PayoutStatus")
# The dev server allows 3 Int attributes: the counts an operator acts on are Ints (filterable,
# e.g. `PayoutsFailed > 0`); the whole summary of a run is one Keyword.
PAYOUTS_FAILED = SearchAttributeKey.for_int("PayoutsFailed")
RUN_SUMMARY = SearchAttributeKey.for_keyword("RunSummary")
RECON_NEEDS_REVIEW = SearchAttributeKey.for_int("ReconNeedsReview")
# Set by Temporal on every workflow a Schedule starts.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

ALL: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    TX_ID,
    PAYMENT_STATUS,
    USER_ID,
    MERCHANT_ID,
    AMOUNT_MINOR,
    CURRENCY,
    PAYOUT_PERIOD,
    PAYOUT_STATUS,
    PAYOUTS_FAILED,
    RUN_SUMMARY,
    RECON_NEEDS_REVIEW,
)
