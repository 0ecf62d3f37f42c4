"""Each emulator test gets its own fresh emulator on a free port, driven by the official SDK."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


class Receiver:
    """A webhook endpoint that answers `fail_first` requests with 500, then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.fail_first = fail_first
        self.changed = threading.Condition()

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.changed:
            self.received.append((body, request.headers["stripe-signature"]))
            self.changed.notify_all()
            status = 500 if len(self.received) <= self.fail_first else 200
        return Response(status_code=status)

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= count, timeout), self.received


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    stack: list[Any] = []

    def start(fail_first: int = 0) -> tuple[Receiver, str]:
        receiver = Receiver(fail_first)
        server = serve_in_thread(Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])]))
        stack.append(server)
        return receiver, f"{server.__enter__()}/hook"

    yield start
    for server in stack:
        server.__exit__(None, None, None)
