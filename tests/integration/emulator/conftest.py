"""Each emulator test gets its own fresh emulator on a free port, driven by the official SDK."""

from collections.abc import Iterator

import pytest
import stripe

from stripe_emulator.app import create_app
from stripe_emulator.emulator import Emulator
from tests.services import serve_in_thread

API_KEY = "sk_test_contract"


@pytest.fixture
def emulator() -> Emulator:
    return Emulator()


@pytest.fixture
def emulator_url(emulator: Emulator) -> Iterator[str]:
    with serve_in_thread(create_app(emulator)) as url:
        yield url


@pytest.fixture
def client(emulator_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": emulator_url}, max_network_retries=0)


def authorize(
    client: stripe.StripeClient, amount: int = 1000, method: str = "pm_card_visa", **extra
) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": method,
            "confirm": True,
            "capture_method": "manual",
        }
        | extra
    )
