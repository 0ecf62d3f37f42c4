"""Frozen dataclasses passed between the API, workflows and activities (one argument each, so
fields can be added without breaking running workflows), one module per domain. All are named here
too: callers import them from `payments.schema.messages`.

No `from __future__ import annotations` here: the Temporal SDK calls typing.get_type_hints on every
conversion of one of these, and string annotations are parsed and evaluated again each time (about
300 µs for PaymentView, a dozen conversions per payment in the worker)."""

from payments.schema.messages.disputes import (
    DisputeEvidence,
    DisputeFunds,
    DisputeRecord,
    DisputeRequest,
    DisputeStatusChange,
    DisputeView,
    EvidenceSubmission,
    StripeDispute,
    StripeDisputeEvent,
)
from payments.schema.messages.merchant_webhooks import (
    StripeBalanceCheck,
    WebhookAttemptResult,
    WebhookDeliveryRequest,
    WebhookGiveUp,
)
from payments.schema.messages.merchants import (
    ConnectedAccountRequest,
    NewMerchant,
    PayoutAccount,
)
from payments.schema.messages.payments import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    ConfirmRequest,
    InitRequest,
    PaymentCatchUp,
    PaymentIntentState,
    PaymentRequest,
    PaymentView,
    RedirectToUrl,
    StatusChange,
    StripeAhead,
    StripeCapture,
    StripePaymentEvent,
    VoidRequest,
    view_of,
)
from payments.schema.messages.payouts import (
    MerchantPageRequest,
    PayoutFailure,
    PayoutRequest,
    PayoutRunInput,
    PayoutRunSummary,
    PayoutTransfer,
    PayoutView,
    ReserveRequest,
)
from payments.schema.messages.reconciliation import (
    ReconciliationInput,
    ReconciliationPage,
    ReconciliationPageResult,
    ReconciliationProgress,
    ReconciliationTotals,
)
from payments.schema.messages.recovery import (
    DeficitPageRequest,
    PlannedReversal,
    RecoveryRequest,
    RecoveryRunInput,
    ReversalResult,
)
from payments.schema.messages.refunds import (
    RefundFailure,
    RefundRequest,
    RefundSettlement,
    RefundView,
    StripeRefund,
    StripeRefundEvent,
)

__all__ = [
    "Authorization",
    "AuthorizeRequest",
    "CaptureRequest",
    "ConfirmRequest",
    "ConnectedAccountRequest",
    "DeficitPageRequest",
    "DisputeEvidence",
    "DisputeFunds",
    "DisputeRecord",
    "DisputeRequest",
    "DisputeStatusChange",
    "DisputeView",
    "EvidenceSubmission",
    "InitRequest",
    "MerchantPageRequest",
    "NewMerchant",
    "PaymentCatchUp",
    "PaymentIntentState",
    "PaymentRequest",
    "PaymentView",
    "PayoutAccount",
    "PayoutFailure",
    "PayoutRequest",
    "PayoutRunInput",
    "PayoutRunSummary",
    "PayoutTransfer",
    "PayoutView",
    "PlannedReversal",
    "ReconciliationInput",
    "ReconciliationPage",
    "ReconciliationPageResult",
    "ReconciliationProgress",
    "ReconciliationTotals",
    "RecoveryRequest",
    "RecoveryRunInput",
    "RedirectToUrl",
    "RefundFailure",
    "RefundRequest",
    "RefundSettlement",
    "RefundView",
    "ReserveRequest",
    "ReversalResult",
    "StatusChange",
    "StripeAhead",
    "StripeBalanceCheck",
    "StripeCapture",
    "StripeDispute",
    "StripeDisputeEvent",
    "StripePaymentEvent",
    "StripeRefund",
    "StripeRefundEvent",
    "VoidRequest",
    "WebhookAttemptResult",
    "WebhookDeliveryRequest",
    "WebhookGiveUp",
    "view_of",
]
