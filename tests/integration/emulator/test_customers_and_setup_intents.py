"""Cards kept on a Customer, as Stripe keeps them: saved through a SetupIntent (3-D Secure when the
bank asks) or while paying (`setup_future_usage`), listed, made default, detached; a card saved
with 4000 0025 0000 3155 pays later without 3-D Secure, one with 3184 asks every time."""

import httpx
import pytest
import stripe

from tests.integration.emulator.conftest import authorize
from tests.integration.emulator.test_webhooks_and_shapes import _raw, _shape_mismatches, stripe_fixtures


def _saved(client: stripe.StripeClient, customer: str) -> list[str]:
    return [m.id for m in client.v1.customers.payment_methods.list(customer).data]


def _setup(client: stripe.StripeClient, customer: str, method: str) -> stripe.SetupIntent:
    return client.v1.setup_intents.create(params={"customer": customer, "payment_method": method, "confirm": True})


def test_a_setup_intent_saves_the_card_on_the_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"metadata": {"user_id": "u1"}})
    setup = _setup(client, customer.id, "pm_card_visa")
    assert setup.status == "succeeded" and setup.customer == customer.id
    assert _saved(client, customer.id) == [setup.payment_method]
    method = client.v1.payment_methods.retrieve(setup.payment_method)
    assert method.customer == customer.id and method.card.last4 == "4242"


def test_a_card_that_asks_for_3ds_is_saved_only_once_authenticated(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    customer = client.v1.customers.create()
    setup = _setup(client, customer.id, "pm_card_authenticationRequiredOnSetup")
    assert setup.status == "requires_action" and _saved(client, customer.id) == []
    done = httpx.post(f"{emulator_url}/_emulator/setup_intents/{setup.id}/complete_action", json={"outcome": "succeed"})
    assert done.json()["status"] == "succeeded"
    assert _saved(client, customer.id) == [setup.payment_method]
    failed = _setup(client, customer.id, "pm_card_authenticationRequiredOnSetup")
    httpx.post(f"{emulator_url}/_emulator/setup_intents/{failed.id}/complete_action", json={"outcome": "fail"})
    after = client.v1.setup_intents.retrieve(failed.id)
    assert (
        after.status == "requires_payment_method"
        and after.last_setup_error.code == "setup_intent_authentication_failure"
    )
    assert _saved(client, customer.id) == [setup.payment_method]


def test_a_card_set_up_once_pays_without_3ds_and_one_that_always_asks_asks_again(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    customer = client.v1.customers.create()
    trusted = _setup(client, customer.id, "pm_card_authenticationRequiredOnSetup")
    httpx.post(f"{emulator_url}/_emulator/setup_intents/{trusted.id}/complete_action", json={"outcome": "succeed"})
    assert authorize(client, method=trusted.payment_method, customer=customer.id).status == "requires_capture"
    always = _setup(client, customer.id, "pm_card_authenticationRequired")
    httpx.post(f"{emulator_url}/_emulator/setup_intents/{always.id}/complete_action", json={"outcome": "succeed"})
    assert authorize(client, method=always.payment_method, customer=customer.id).status == "requires_action"


def test_a_declined_card_is_not_saved(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    with pytest.raises(stripe.CardError) as declined:
        _setup(client, customer.id, "pm_card_chargeDeclined")
    assert declined.value.error.decline_code == "generic_decline"
    assert _saved(client, customer.id) == []


def test_paying_with_setup_future_usage_saves_the_card_once_authorized(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    intent = authorize(client, method="pm_card_mastercard", customer=customer.id, setup_future_usage="off_session")
    assert intent.status == "requires_capture" and _saved(client, customer.id) == [intent.payment_method]
    with pytest.raises(stripe.CardError):
        authorize(client, method="pm_card_chargeDeclined", customer=customer.id, setup_future_usage="off_session")
    assert _saved(client, customer.id) == [intent.payment_method]
    with pytest.raises(stripe.InvalidRequestError):
        authorize(client, method="pm_card_visa", setup_future_usage="off_session")  # no customer to keep it on


def test_default_and_detach(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    first, second = (_setup(client, customer.id, "pm_card_visa").payment_method for _ in range(2))
    updated = client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": second}})
    assert updated.invoice_settings.default_payment_method == second
    detached = client.v1.payment_methods.detach(second)
    assert detached.customer is None and _saved(client, customer.id) == [first]
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.detach(second)


def test_a_card_on_one_customer_cannot_pay_for_another(client: stripe.StripeClient) -> None:
    mine, theirs = client.v1.customers.create(), client.v1.customers.create()
    method = _setup(client, mine.id, "pm_card_visa").payment_method
    with pytest.raises(stripe.InvalidRequestError):
        authorize(client, method=method, customer=theirs.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(theirs.id, params={"invoice_settings": {"default_payment_method": method}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_methods.attach(method, params={"customer": theirs.id})


def test_customer_and_setup_intent_have_every_field_of_stripes_fixture(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    fixtures = stripe_fixtures()
    customer = client.v1.customers.create()
    setup = _setup(client, customer.id, "pm_card_visa")
    objects = {
        "customer": _raw(emulator_url, f"/v1/customers/{customer.id}"),
        "setup_intent": _raw(emulator_url, f"/v1/setup_intents/{setup.id}"),
    }
    problems = [p for kind, obj in objects.items() for p in _shape_mismatches(obj, fixtures[kind], kind)]
    assert problems == []
