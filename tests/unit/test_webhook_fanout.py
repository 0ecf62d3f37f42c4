"""Which outbox events go to which merchant endpoints."""

from payments.workers.merchant_webhook_fanout import concerns_merchant, subscribed


def test_only_events_of_a_merchant_are_sent() -> None:
    for event_type in ("payment.confirmed", "refund.succeeded", "payout.paid", "dispute.created"):
        assert concerns_merchant(event_type, {"merchant_id": "mer_1"})
    assert not concerns_merchant("reconciliation.discrepancy", {"merchant_id": "mer_1"})
    assert not concerns_merchant("webhook_endpoint.disabled", {"merchant_id": "mer_1"})  # internal stream only
    assert not concerns_merchant("payment.confirmed", {})


def test_an_endpoint_gets_the_types_it_subscribed_to_or_all_with_a_star() -> None:
    assert subscribed(["payment.confirmed"], "payment.confirmed")
    assert not subscribed(["payment.confirmed"], "payment.authorized")
    assert subscribed(["*"], "payout.failed")
