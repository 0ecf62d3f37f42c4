"""The stack's fixtures for every integration test: a database engine, a fresh user and merchant
per test, and helpers that drive payments, payouts, disputes and webhooks through the HTTP API."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from payments.config.settings import Settings
from payments.schema.database import create_engine
from tests.services import eventually, fresh_key

T = TypeVar("T")

# The emulator's paths for a fault on authorize (create with confirm=true) and on capture.
AUTHORIZE = "/v1/payment_intents"
CAPTURE = r"/v1/payment_intents/[^/]+/capture"


@dataclass
class Parties:
    api: httpx.AsyncClient
    auth: Callable[..., dict[str, str]]
    user_id: str
    merchant_id: str
    fee_bps: int

    @property
    def as_user(self) -> dict[str, str]:
        return self.auth("user", self.user_id)

    @property
    def as_merchant(self) -> dict[str, str]:
        return self.auth("merchant", self.merchant_id)

    def init_body(self, amount: int = 1000, card: str = "pm_card_visa", key: str | None = None) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "merchant_id": self.merchant_id,
            "amount": amount,
            "currency": "usd",
            "card_token": card,
            "idempotency_key": key or fresh_key(),
        }

    async def init(self, amount: int = 1000, card: str = "pm_card_visa", key: str | None = None, **extra: Any):
        body = self.init_body(amount, card, key) | extra
        return await self.api.post("/payments/init", json=body, headers=self.as_user)

    async def authorized(self, amount: int = 1000, card: str = "pm_card_visa") -> dict[str, Any]:
        response = await self.init(amount, card)
        assert response.status_code == 201, response.text
        return response.json()

    async def confirm(self, tx_id: str, amount: int | None = None) -> httpx.Response:
        body: dict[str, Any] = {"tx_id": tx_id} | ({"amount": amount} if amount else {})
        return await self.api.post("/payments/confirm", json=body, headers=self.as_user)

    async def captured(self, amount: int = 1000, capture: int | None = None) -> dict[str, Any]:
        tx = await self.authorized(amount)
        response = await self.confirm(tx["id"], capture)
        assert response.status_code == 200, response.text
        return response.json()

    async def refund(self, tx_id: str, amount: int | None = None, key: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"idempotency_key": key or fresh_key()} | ({"amount": amount} if amount else {})
        return await self.api.post(f"/payments/{tx_id}/refunds", json=body, headers=self.as_merchant)

    async def get(self, tx_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/payments/{tx_id}", headers=self.as_user)
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_for_status(self, tx_id: str, status: str, within: float = 15) -> dict[str, Any]:
        return await eventually(
            lambda: self.get(tx_id), lambda tx: tx["status"] == status, f"{tx_id} to become {status}", within
        )

    async def saved_card(self, card: str = "pm_card_visa") -> dict[str, Any]:
        """A card the user saved on file (with no 3-D Secure)."""
        body = {"card_token": card, "idempotency_key": fresh_key()}
        response = await self.api.post(f"/users/{self.user_id}/cards", json=body, headers=self.as_user)
        assert response.status_code == 201, response.text
        return response.json()

    async def saved_cards(self) -> list[dict[str, Any]]:
        response = await self.api.get(f"/users/{self.user_id}/cards", headers=self.as_user)
        assert response.status_code == 200, response.text
        return response.json()["data"]


async def open_merchant(api: httpx.AsyncClient, operator: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST /merchants, and the merchant once its Stripe connected account is open: at once on 201;
    on 202 (onboarding outlasted the API's wait, payments/api/routes/parties.py, as it may on a
    loaded machine) by polling GET /merchants/{id}, which answers 404 until the onboarding workflow
    writes the row, then no payout account until it is attached."""
    created = await api.post("/merchants", json=body, headers=operator)
    assert created.status_code in (201, 202), created.text
    if created.status_code == 201:
        return dict(created.json())

    def opened(answer: httpx.Response) -> bool:
        assert answer.status_code in (200, 404), answer.text
        return answer.status_code == 200 and answer.json()["payout_account"] is not None

    path = f"/merchants/{created.json()['id']}"
    merchant = await eventually(lambda: api.get(path, headers=operator), opened, f"{path} to have its account")
    return dict(merchant.json())


@pytest_asyncio.fixture
async def parties(api: httpx.AsyncClient, auth) -> Parties:
    operator = auth("operator")
    user = (await api.post("/users", json={"name": "Payer"}, headers=operator)).json()
    fee_bps = 250
    merchant = await open_merchant(api, operator, {"name": "Seller", "currency": "usd", "fee_bps": fee_bps})
    return Parties(api, auth, user["id"], merchant["id"], fee_bps)


def steps_run(history: WorkflowHistory) -> list[str]:
    """The activity types a workflow ran, in order: its activity tasks, and its local activities
    (their markers, whose `data` core writes as plain JSON; the result beside it is encrypted)."""
    steps = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity":
                steps.append(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    return steps


def stripe_intent(settings: Settings, tx_id: str) -> stripe.PaymentIntent:
    """The PaymentIntent Stripe (the emulator) holds for our transaction; exactly one must exist."""
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})
    intents = client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    mine = [i for i in intents if i.metadata.to_dict().get("tx_id") == tx_id]
    assert len(mine) == 1, f"{len(mine)} PaymentIntents for {tx_id}"
    return mine[0]


@pytest.fixture
def emulator_control(stripe_api_base: str) -> Callable[..., httpx.Response]:
    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{stripe_api_base}/_emulator{path}", timeout=10, **kwargs)

    return call


def command_env(settings: Settings) -> dict[str, str]:
    """The environment for a `payments` command on the test stack (none of the developer's PAYMENTS_*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")} | {
        "PAYMENTS_DATABASE_URL": settings.database_url or "",
        "PAYMENTS_REDIS_URL": settings.redis_url or "",
        "PAYMENTS_TEMPORAL_ADDRESS": settings.temporal_target,
        "PAYMENTS_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "PAYMENTS_WEBHOOK_TASK_QUEUE": settings.webhook_task_queue,
        "PAYMENTS_STRIPE_API_BASE": settings.stripe_api_base or "",
        "PAYMENTS_ENCRYPTION_KEYS": settings.encryption_keys.get_secret_value(),
        "PAYMENTS_ENV": settings.env,
    }


def worker_process(settings: Settings, log: Path, metrics_port: int = 0) -> subprocess.Popen[bytes]:
    """`payments worker` in its own process (so a test can SIGKILL it), on settings' task queue."""
    env = command_env(settings) | {"PAYMENTS_WORKER_METRICS_PORT": str(metrics_port)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "payments", "worker"], env=env, stdout=out, stderr=out)


async def after_worker_replaced(
    first: subprocess.Popen[bytes], settings: Settings, log: Path, outcome: Awaitable[T], within: float
) -> T:
    """SIGKILL `first`, start another worker on the same task queue, await `outcome` meanwhile."""
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    second = worker_process(settings, log)
    try:
        return await asyncio.wait_for(outcome, within)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()
