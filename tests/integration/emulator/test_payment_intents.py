"""PaymentIntents through the official SDK: every transition, error and test card."""

import httpx
import pytest
import stripe

from tests.integration.emulator.conftest import authorize


def test_manual_capture_authorizes_then_captures(client: stripe.StripeClient) -> None:
    intent = authorize(client, 1500, metadata={"tx_id": "tx_1"}, transfer_group="grp_1")
    assert intent.status == "requires_capture"
    assert intent.amount_capturable == 1500 and intent.amount_received == 0
    assert intent.metadata["tx_id"] == "tx_1" and intent.transfer_group == "grp_1"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.captured is False and charge.status == "succeeded"
    assert charge.payment_method_details.card.brand == "visa" and charge.payment_method_details.card.last4 == "4242"

    captured = client.v1.payment_intents.capture(intent.id)
    assert captured.status == "succeeded" and captured.amount_received == 1500 and captured.amount_capturable == 0
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.captured is True and charge.amount_captured == 1500 and charge.balance_transaction


def test_expand_latest_charge(client: stripe.StripeClient) -> None:
    intent = authorize(client, method="pm_card_mastercard")
    expanded = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert expanded.latest_charge.payment_method_details.card.brand == "mastercard"
    assert expanded.latest_charge.payment_method_details.card.last4 == "4444"


def test_partial_capture_and_capture_beyond_capturable(client: stripe.StripeClient) -> None:
    intent = authorize(client, 1000)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1001})
    assert too_much.value.code == "amount_too_large" and too_much.value.param == "amount_to_capture"
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 600})
    assert captured.amount_received == 600
    assert client.v1.charges.retrieve(intent.latest_charge).amount_captured == 600


@pytest.mark.parametrize(
    "first, second",
    [("capture", "capture"), ("capture", "cancel"), ("cancel", "capture"), ("cancel", "cancel")],
)
def test_illegal_moves_are_unexpected_state(client: stripe.StripeClient, first: str, second: str) -> None:
    intent = authorize(client)
    getattr(client.v1.payment_intents, first)(intent.id)
    with pytest.raises(stripe.InvalidRequestError) as error:
        getattr(client.v1.payment_intents, second)(intent.id)
    assert error.value.code == "payment_intent_unexpected_state"
    assert error.value.http_status == 400


def test_confirming_a_captured_intent_is_unexpected_state(client: stripe.StripeClient) -> None:
    intent = authorize(client)
    client.v1.payment_intents.capture(intent.id)
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.payment_intents.confirm(intent.id)
    assert error.value.code == "payment_intent_unexpected_state"


def test_cancel_voids_an_authorization(client: stripe.StripeClient) -> None:
    intent = authorize(client)
    canceled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "requested_by_customer"})
    assert canceled.status == "canceled" and canceled.amount_capturable == 0
    assert canceled.cancellation_reason == "requested_by_customer" and canceled.canceled_at


def test_step_by_step_create_then_confirm(client: stripe.StripeClient) -> None:
    bare = client.v1.payment_intents.create(params={"amount": 500, "currency": "usd", "capture_method": "manual"})
    assert bare.status == "requires_payment_method"
    with_method = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "payment_method": "tok_visa", "capture_method": "manual"}
    )
    assert with_method.status == "requires_confirmation"
    assert client.v1.payment_intents.confirm(with_method.id).status == "requires_capture"
    confirmed = client.v1.payment_intents.confirm(bare.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "requires_capture"


def test_automatic_capture_succeeds_at_once(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert intent.status == "succeeded" and intent.amount_received == 700


@pytest.mark.parametrize(
    "method, code, decline_code",
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ],
)
def test_declines_are_card_errors_with_stripe_codes(
    client: stripe.StripeClient, method: str, code: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as declined:
        authorize(client, method=method)
    error = declined.value
    assert error.http_status == 402 and error.code == code
    assert error.error is not None and error.error.decline_code == decline_code
    intent_id = error.error.payment_intent["id"]
    intent = client.v1.payment_intents.retrieve(intent_id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None and intent.last_payment_error.decline_code == decline_code
    assert client.v1.charges.retrieve(intent.latest_charge).status == "failed"


def test_authentication_required_until_completed(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = authorize(client, method="pm_card_authenticationRequired")
    assert intent.status == "requires_action" and intent.next_action is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(intent.id)
    done = httpx.post(
        f"{emulator_url}/_emulator/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"}
    )
    assert done.status_code == 200 and done.json()["status"] == "requires_capture"
    assert client.v1.payment_intents.capture(intent.id).status == "succeeded"


def test_failed_authentication_needs_a_new_payment_method(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = authorize(client, method="pm_card_authenticationRequired")
    failed = httpx.post(
        f"{emulator_url}/_emulator/payment_intents/{intent.id}/complete_action", json={"outcome": "fail"}
    )
    assert failed.json()["status"] == "requires_payment_method"
    assert failed.json()["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_unknown_payment_method_is_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        authorize(client, method="pm_card_doesNotExist")
    assert error.value.code == "resource_missing" and error.value.param == "payment_method"
    assert error.value.http_status == 404


@pytest.mark.parametrize(
    "params, code, param",
    [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": "ten", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 0, "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 100}, "parameter_missing", "currency"),
        ({"amount": 100, "currency": "us1"}, "parameter_invalid_string", "currency"),
    ],
)
def test_invalid_parameters_name_the_parameter(
    client: stripe.StripeClient, params: dict, code: str, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.payment_intents.create(params=params)
    assert error.value.code == code and error.value.param == param


def test_retrieving_an_unknown_intent_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.payment_intents.retrieve("pi_missing")
    assert error.value.http_status == 404 and error.value.code == "resource_missing"


def test_list_is_newest_first_with_cursors_and_created_filters(client: stripe.StripeClient, emulator) -> None:
    ids = [authorize(client, 100 + i).id for i in range(5)]
    for index, intent_id in enumerate(ids):  # spread creation times so created filters can select
        emulator.store.put(emulator.store.get(intent_id) | {"created": 1_000 + index})
    first = client.v1.payment_intents.list(params={"limit": 2})
    assert [p.id for p in first.data] == ids[::-1][:2] and first.has_more
    second = client.v1.payment_intents.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [p.id for p in second.data] == ids[::-1][2:4] and second.has_more
    last = client.v1.payment_intents.list(params={"limit": 2, "starting_after": second.data[-1].id})
    assert [p.id for p in last.data] == [ids[0]] and not last.has_more
    back = client.v1.payment_intents.list(params={"limit": 2, "ending_before": last.data[0].id})
    assert [p.id for p in back.data] == [ids[2], ids[1]]
    window = client.v1.payment_intents.list(params={"created": {"gte": 1_001, "lt": 1_004}})
    assert [p.id for p in window.data] == [ids[3], ids[2], ids[1]]
    auto = [p.id for p in client.v1.payment_intents.list(params={"limit": 2}).auto_paging_iter()]
    assert auto == ids[::-1]


def test_list_limit_out_of_range_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.payment_intents.list(params={"limit": 101})
    assert error.value.param == "limit"


def test_requests_without_a_valid_key_are_401(emulator_url: str) -> None:
    anonymous = stripe.StripeClient("sk_live_not_a_test_key", base_addresses={"api": emulator_url})
    with pytest.raises(stripe.AuthenticationError):
        anonymous.v1.payment_intents.list()
    assert httpx.get(f"{emulator_url}/v1/payment_intents").status_code == 401


def test_unknown_routes_are_stripe_404s(emulator_url: str) -> None:
    response = httpx.get(f"{emulator_url}/v1/nope", headers={"Authorization": "Bearer sk_test_x"})
    assert response.status_code == 404 and response.json()["error"]["type"] == "invalid_request_error"


def test_seeded_history_lists_like_any_other(client: stripe.StripeClient, emulator_url: str) -> None:
    body = {
        "count": 3,
        "amount": 700,
        "currency": "usd",
        "created_from": 1_000,
        "created_to": 1_003,
        "tx_prefix": "tx_s",
    }
    seeded = httpx.post(f"{emulator_url}/_emulator/seed/payment_intents", json=body).json()["ids"]
    listed = client.v1.payment_intents.list(params={"created": {"gte": 1_000, "lt": 1_003}, "limit": 10})
    assert [i.id for i in listed.data] == seeded[::-1]  # newest first
    assert [(i.status, i.amount_received, i.metadata["tx_id"]) for i in listed.data][-1] == ("succeeded", 700, "tx_s0")
    batch = httpx.post(f"{emulator_url}/_emulator/seed/payment_intents", json=body | {"count": 1, "first": 3}).json()
    assert client.v1.payment_intents.retrieve(batch["ids"][0]).metadata["tx_id"] == "tx_s3"  # numbered on


def test_a_declined_intent_is_confirmed_again_with_another_card_or_token_and_a_customer(
    client: stripe.StripeClient,
) -> None:
    """Stripe's retry after a decline: the same PaymentIntent (requires_payment_method) confirmed
    with a token as payment_method_data or a new PaymentMethod; a saved card's Customer is set by an
    update first (confirm takes none), and a settled intent's Customer cannot change."""
    with pytest.raises(stripe.CardError) as declined:
        authorize(client, method="pm_card_chargeDeclined")
    intent_id = declined.value.error.payment_intent["id"]  # type: ignore[union-attr]
    token = {"type": "card", "card": {"token": "tok_chargeDeclinedInsufficientFunds"}}
    with pytest.raises(stripe.CardError) as again:  # the token's card, not the first one
        client.v1.payment_intents.confirm(intent_id, params={"payment_method_data": token})
    assert again.value.error is not None and again.value.error.decline_code == "insufficient_funds"
    customer = client.v1.customers.create()
    client.v1.payment_intents.update(intent_id, params={"customer": customer.id})
    paid = client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_mastercard"})
    assert paid.status == "requires_capture" and paid.customer == customer.id and paid.id == intent_id
    with pytest.raises(stripe.InvalidRequestError) as settled:
        client.v1.payment_intents.update(intent_id, params={"customer": client.v1.customers.create().id})
    assert settled.value.code == "payment_intent_unexpected_state"
