"""Three layers of idempotency: Redis replays, the workflow id, PostgreSQL UNIQUE(user, key)."""

import asyncio
import dataclasses
from contextlib import nullcontext

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.api.app import create_app
from payments.api.errors import IdempotencyKeyReused
from payments.api.models import PaymentInit
from payments.api.routes.payments import authorize_once, init_fingerprint
from payments.api.single_flight import SingleFlight
from payments.config.ports import free_port
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.messages import PaymentRequest
from payments.schema.tables import Transaction
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties, stripe_intent
from tests.services import fresh_key, serve_in_thread


async def _rows_for_key(engine: AsyncEngine, user_id: str, key: str) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).where(Transaction.user_id == user_id, Transaction.idempotency_key == key)
        return int((await conn.execute(query)).scalar_one())


async def test_50_concurrent_inits_with_one_key_are_one_payment(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    key = f"storm-{fresh_key()}"
    responses = await asyncio.gather(*[parties.init(1234, key=key) for _ in range(50)])
    assert {r.status_code for r in responses} <= {200, 201}
    assert sum(r.status_code == 201 for r in responses) == 1
    assert all(r.headers.get("idempotent-replayed") == "true" for r in responses if r.status_code == 200)
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies)
    assert await _rows_for_key(engine, parties.user_id, key) == 1
    assert stripe_intent(stack_settings, bodies[0]["id"]).amount == 1234  # exactly one PaymentIntent


async def test_the_same_key_with_other_parameters_is_422(parties: Parties) -> None:
    key = fresh_key()
    assert (await parties.init(1000, key=key)).status_code == 201
    reused = await parties.init(2000, key=key)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    other_card = await parties.init(1000, key=key, card="pm_card_mastercard")
    assert other_card.status_code == 422


async def test_a_repeat_after_the_answer_is_replayed(parties: Parties) -> None:
    key = fresh_key()
    first = await parties.init(1000, key=key)
    again = await parties.init(1000, key=key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


async def test_a_repeat_after_the_first_run_closed_is_a_replay_not_a_new_payment(
    parties: Parties, engine: AsyncEngine, temporal_client: Client, stack_settings: Settings
) -> None:
    """The race the API's Redis and database pre-checks can lose: they saw no payment, and by the
    time update-with-start arrives the first run (declined, then given up) has closed, so a second
    run starts. Driven here with the API's own step after its pre-checks."""
    body = parties.init_body(card="pm_card_chargeDeclined")
    first = await parties.api.post("/payments/init", json=body, headers=parties.as_user)
    assert first.status_code == 201 and first.json()["status"] == "declined"
    given_up = await parties.api.post(f"/payments/{first.json()['id']}/cancel", headers=parties.as_user)
    assert given_up.status_code == 200 and given_up.json()["status"] == "failed"
    await temporal_client.get_workflow_handle(workflow_id(parties.user_id, body["idempotency_key"])).result()

    repeat = PaymentRequest(
        tx_id=f"tx_{fresh_key()}",
        user_id=parties.user_id,
        merchant_id=parties.merchant_id,
        amount=body["amount"],
        currency=body["currency"],
        card_token=body["card_token"],
        idempotency_key=body["idempotency_key"],
        fingerprint=init_fingerprint(PaymentInit(**body)),
        authorization_expiry_seconds=3600,
    )
    async with session_factory(engine)() as session:
        tx, view = await authorize_once(session, temporal_client, stack_settings, repeat, SingleFlight(), nullcontext)
        assert view.replayed and tx.id == first.json()["id"] and tx.status == "failed"
        other_amount = dataclasses.replace(
            repeat, amount=999, fingerprint=init_fingerprint(PaymentInit(**body | {"amount": 999}))
        )
        await temporal_client.get_workflow_handle(workflow_id(parties.user_id, body["idempotency_key"])).result()
        with pytest.raises(IdempotencyKeyReused):
            await authorize_once(session, temporal_client, stack_settings, other_amount, SingleFlight(), nullcontext)
    assert await _rows_for_key(engine, parties.user_id, body["idempotency_key"]) == 1


async def test_the_key_may_come_as_a_header(parties: Parties) -> None:
    body = {
        "user_id": parties.user_id,
        "merchant_id": parties.merchant_id,
        "amount": 500,
        "currency": "usd",
        "card_token": "tok_visa",
    }
    headers = parties.as_user | {"Idempotency-Key": fresh_key()}
    first = await parties.api.post("/payments/init", json=body, headers=headers)
    again = await parties.api.post("/payments/init", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 200 and first.json()["id"] == again.json()["id"]
    missing = await parties.api.post("/payments/init", json=body, headers=parties.as_user)
    assert missing.status_code == 400


async def test_postgres_guards_the_key_when_redis_has_forgotten_it(parties: Parties, stack_settings: Settings) -> None:
    key = fresh_key()
    first = await parties.init(1000, key=key)
    from redis.asyncio import Redis

    redis = Redis.from_url(stack_settings.redis_url or "")
    assert await redis.delete(f"idempotency:payment:{parties.user_id}:{key}") == 1
    await redis.aclose()
    again = await parties.init(1000, key=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    reused = await parties.init(999, key=key)
    assert reused.status_code == 422


async def test_payments_go_on_when_redis_is_down(parties: Parties, stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            body = parties.init_body(700)
            first = await client.post("/payments/init", json=body, headers=parties.as_user)
            assert first.status_code == 201 and first.json()["status"] == "authorized"
            again = await client.post("/payments/init", json=body, headers=parties.as_user)
            assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
            confirmed = await client.post(
                "/payments/confirm", json={"tx_id": first.json()["id"]}, headers=parties.as_user
            )
            assert confirmed.json()["status"] == "confirmed"


async def test_the_cached_3d_secure_answer_keeps_its_client_secret_sealed(parties: Parties, redis_url: str) -> None:
    first = await parties.init(card="pm_card_authenticationRequired", key="order-3ds-sealed")
    assert first.status_code == 201 and first.json()["status"] == "requires_action", first.text
    secret = first.json()["client_secret"]
    redis = Redis.from_url(redis_url)
    try:
        raw = await redis.get(f"idempotency:payment:{parties.user_id}:order-3ds-sealed")
    finally:
        await redis.aclose()
    assert raw is not None and secret.encode() not in raw and b"secret" not in raw
    again = await parties.init(card="pm_card_authenticationRequired", key="order-3ds-sealed")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["client_secret"] == secret
