"""Cards typed into the card field: PaymentMethods from Stripe's test numbers, made with a
publishable key, and the 3-D Secure page a `redirect_to_url` next action sends the customer to."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from stripe_emulator.app import create_app
from stripe_emulator.emulator import Emulator
from tests.integration.emulator.conftest import authorize
from tests.services import serve_in_thread

PUBLISHABLE_KEY = "pk_test_contract"


def card(number: str, exp_year: int = 2034, cvc: str = "123") -> dict:
    return {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": exp_year, "cvc": cvc}}


@pytest.fixture
def browser_client(emulator_url: str) -> stripe.StripeClient:
    """What Stripe.js holds: the publishable key."""
    return stripe.StripeClient(PUBLISHABLE_KEY, base_addresses={"api": emulator_url}, max_network_retries=0)


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("4242 4242 4242 4242", "requires_capture"),
        ("4000 0025 0000 3155", "requires_action"),
        ("4000 0000 0000 0259", "requires_capture"),
    ],
)
def test_a_test_number_makes_a_payment_method_that_behaves_as_stripe_documents(
    browser_client: stripe.StripeClient, client: stripe.StripeClient, number: str, status: str
) -> None:
    method = browser_client.v1.payment_methods.create(params=card(number))
    assert method.id.startswith("pm_") and method.card.brand == "visa"
    assert method.card.last4 == number[-4:] and (method.card.exp_month, method.card.exp_year) == (12, 2034)
    assert len(method.card.fingerprint) == 16
    assert authorize(client, method=method.id).status == status


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds")],
)
def test_a_declining_test_number_declines_at_confirmation(
    browser_client: stripe.StripeClient, client: stripe.StripeClient, number: str, decline_code: str
) -> None:
    method = browser_client.v1.payment_methods.create(params=card(number))
    with pytest.raises(stripe.CardError) as declined:
        authorize(client, method=method.id)
    assert declined.value.error.decline_code == decline_code


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (card("4242424242424241"), "incorrect_number"),
        (card("4242424242424242", exp_year=2020), "invalid_expiry_year"),
        (card("4242424242424242", cvc="12"), "invalid_cvc"),
    ],
)
def test_bad_card_details_are_card_errors(browser_client: stripe.StripeClient, params: dict, code: str) -> None:
    with pytest.raises(stripe.CardError) as refused:
        browser_client.v1.payment_methods.create(params=params)
    assert refused.value.code == code


def test_a_publishable_key_may_only_create_payment_methods(browser_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.AuthenticationError):
        browser_client.v1.payment_intents.list()
    with pytest.raises(stripe.AuthenticationError):
        browser_client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"})


def test_the_emulator_keeps_no_card_number(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    with serve_in_thread(create_app(Emulator(state))) as url:
        browser = stripe.StripeClient(PUBLISHABLE_KEY, base_addresses={"api": url}, max_network_retries=0)
        method = browser.v1.payment_methods.create(params=card("4000002500003155"))
        server = stripe.StripeClient("sk_test_contract", base_addresses={"api": url}, max_network_retries=0)
        assert server.v1.payment_methods.retrieve(method.id).card.last4 == "3155"
    stored = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"4000002500003155" not in stored and method.id.encode() in stored


@pytest.mark.parametrize(
    ("outcome", "status", "event"),
    [
        ("succeed", "requires_capture", "payment_intent.amount_capturable_updated"),
        ("fail", "requires_payment_method", "payment_intent.payment_failed"),
    ],
)
def test_the_3d_secure_page_completes_the_payment_intent_and_returns_to_the_shop(
    client: stripe.StripeClient, emulator_url: str, outcome: str, status: str, event: str
) -> None:
    intent = authorize(client, method="pm_card_authenticationRequired", return_url="https://shop.test/checkout?o=1")
    action = intent.next_action
    assert action.type == "redirect_to_url" and action.redirect_to_url.return_url == "https://shop.test/checkout?o=1"
    page = httpx.get(action.redirect_to_url.url)
    assert page.status_code == 200 and "Complete authentication" in page.text
    assert str(page.url).startswith(emulator_url)

    form = {"payment_intent": intent.id, "payment_intent_client_secret": intent.client_secret, "outcome": outcome}
    back = httpx.post(f"{emulator_url}/3d_secure_2/hosted", data=form)
    assert back.status_code == 303
    location = urlsplit(back.headers["location"])
    assert (location.netloc, location.path) == ("shop.test", "/checkout")
    assert parse_qs(location.query) == {
        "o": ["1"],
        "payment_intent": [intent.id],
        "payment_intent_client_secret": [intent.client_secret],
        "redirect_status": ["succeeded" if outcome == "succeed" else "failed"],
    }
    assert client.v1.payment_intents.retrieve(intent.id).status == status
    events = client.v1.events.list(params={"type": event})
    assert [e.data.object.id for e in events.data] == [intent.id]


def test_the_3d_secure_page_wants_the_payment_intents_own_secret(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    intent = authorize(client, method="pm_card_authenticationRequired", return_url="https://shop.test/checkout")
    forged = {
        "payment_intent": intent.id,
        "payment_intent_client_secret": f"{intent.id}_secret_x",
        "outcome": "succeed",
    }
    assert httpx.get(f"{emulator_url}/3d_secure_2/hosted", params=forged).status_code == 404
    assert httpx.post(f"{emulator_url}/3d_secure_2/hosted", data=forged).status_code == 404
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_action"


def test_without_a_return_url_the_next_action_is_stripe_js(client: stripe.StripeClient) -> None:
    assert authorize(client, method="pm_card_authenticationRequired").next_action.type == "use_stripe_sdk"
