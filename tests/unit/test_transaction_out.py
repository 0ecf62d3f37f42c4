"""The payment resource as the API answers it, and as the replay cache gives it back."""

from payments.api.models import TransactionOut


def test_an_init_answer_cached_before_card_attempts_replays_with_one_card() -> None:
    """Init answers stay 24 h in Redis: one cached before the field must still validate."""
    cached = {
        "id": "tx_1",
        "user_id": "usr_1",
        "merchant_id": "mer_1",
        "amount": 1000,
        "amount_captured": 0,
        "amount_refunded": 0,
        "currency": "usd",
        "status": "authorized",
        "failure_code": None,
        "failure_message": None,
        "card": {"brand": "visa", "last4": "4242"},
        "idempotency_key": "k",
        "created_at": "2026-12-05T06:00:00Z",
        "updated_at": "2026-12-05T06:00:00Z",
    }
    assert TransactionOut.model_validate(cached).card_attempts == 1
