"""Merchant webhooks on the real stack, to a real HTTP receiver: signed with the endpoint's secret,
retried until a 2xx, pending (attempts listed) while the receiver is down, retried now on request,
both secrets during a rotation, invisible to other merchants, and delivered across a killed worker."""

import asyncio
import hashlib
import hmac
import signal
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.activities.merchant_webhook_records import WebhookRecords
from payments.config.keyring import Keyring
from payments.config.ports import free_port
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.messages import WebhookGiveUp
from payments.schema.tables import OutboxEvent, WebhookEndpoint
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow, delivery_request, workflow_id
from tests.integration.conftest import Parties, after_worker_replaced, command_env, worker_process
from tests.integration.merchant_webhooks.webhook_receiver import HANG, Received, receiving
from tests.services import eventually, fresh_key

TYPES = ("payment.authorized", "payment.confirmed")


def signed_by(received: Received, secret: str) -> bool:
    """The merchant's check (README), with the standard library only."""
    items = [item.split("=", 1) for item in received.headers["payments-signature"].split(",")]
    timestamp = next(value for key, value in items if key == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256).hexdigest()
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, value in items)


def v1_count(received: Received) -> int:
    return received.headers["payments-signature"].count("v1=")


async def add_endpoint(parties: Parties, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"url": url, "enabled_events": events or ["*"]}
    response = await parties.api.post(
        f"/merchants/{parties.merchant_id}/webhook_endpoints", json=body, headers=parties.as_merchant
    )
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(parties: Parties, **query: str) -> list[dict[str, Any]]:
    response = await parties.api.get(
        f"/merchants/{parties.merchant_id}/webhook_deliveries", params=query, headers=parties.as_merchant
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def event_id_of(engine: AsyncEngine, tx_id: str, event_type: str) -> int:
    async with engine.connect() as conn:
        query = select(OutboxEvent.id).where(OutboxEvent.aggregate_id == tx_id, OutboxEvent.type == event_type)
        return (await conn.execute(query)).scalar_one()


async def the_delivery(parties: Parties, event_id: int, ready=lambda d: True, within: float = 90) -> dict[str, Any]:
    async def probe() -> list[dict[str, Any]]:
        return await deliveries(parties, event_id=str(event_id))

    found = await eventually(probe, lambda ds: len(ds) == 1 and ready(ds[0]), f"delivery of event {event_id}", within)
    return found[0]


def delivered(delivery: dict[str, Any]) -> bool:
    return delivery["status"] == "delivered"


async def test_a_payment_s_events_arrive_signed_with_the_endpoint_secret(parties: Parties, engine: AsyncEngine) -> None:
    with receiving() as receiver:
        endpoint = await add_endpoint(parties, receiver.url)
        assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"
        tx = await parties.captured(1500)
        await eventually(
            lambda: _received(receiver, tx["id"]), lambda got: len(got) >= 2, "both events at the receiver", 90
        )
    events = receiver.events(tx["id"])
    assert {r.event["type"] for r in events} == set(TYPES)
    for received in events:
        assert signed_by(received, endpoint["secret"]) and v1_count(received) == 1
        assert not signed_by(received, "whsec_someone_else")
        assert set(received.event) == {"id", "type", "created", "data"}
        assert received.event["data"]["object"]["merchant_id"] == parties.merchant_id
    confirmed = await event_id_of(engine, tx["id"], "payment.confirmed")
    delivery = await the_delivery(parties, confirmed, delivered)
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["endpoint_id"] == endpoint["id"]
    listed = await parties.api.get(f"/merchants/{parties.merchant_id}/webhook_endpoints", headers=parties.as_merchant)
    assert [e["id"] for e in listed.json()["data"]] == [endpoint["id"]]
    assert listed.json()["data"][0]["secret"] is None  # shown once, at creation
    await the_delivery(parties, await event_id_of(engine, tx["id"], "payment.authorized"), delivered)
    timeline = await parties.api.get(f"/payments/{tx['id']}/timeline", headers=parties.as_merchant)
    shown = [(e["event_id"], e["status"]) for e in timeline.json()["data"] if e["kind"] == "delivery"]
    event_ids = [str(await event_id_of(engine, tx["id"], event_type)) for event_type in TYPES]
    assert sorted(shown) == sorted((event_id, "delivered") for event_id in event_ids)
    as_payer = await parties.api.get(f"/payments/{tx['id']}/timeline", headers=parties.as_user)
    assert not [e for e in as_payer.json()["data"] if e["kind"] == "delivery"]  # the merchant's, not the payer's


async def _received(receiver, tx_id: str) -> list[Received]:
    return receiver.events(tx_id)


async def test_a_receiver_failing_its_first_attempts_still_gets_the_event_delivered(
    parties: Parties, engine: AsyncEngine
) -> None:
    with receiving(lambda n: [500, 503][n] if n < 2 else 200) as receiver:
        await add_endpoint(parties, receiver.url, ["payment.authorized"])
        tx = await parties.authorized(700)
        event_id = await event_id_of(engine, tx["id"], "payment.authorized")
        delivery = await the_delivery(parties, event_id, delivered)
    assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    assert {r.event["id"] for r in receiver.events(tx["id"])} == {str(event_id)}  # duplicates: one event id
    attempts = await parties.api.get(
        f"/merchants/{parties.merchant_id}/webhook_deliveries/{delivery['id']}/attempts", headers=parties.as_merchant
    )
    assert [a["status_code"] for a in attempts.json()["data"]] == [200, 503, 500]  # newest first
    assert attempts.json()["data"][1]["response_body"] == "answered 503"


async def test_a_receiver_that_stays_down_leaves_the_delivery_pending_with_its_attempts_listed(
    parties: Parties, engine: AsyncEngine
) -> None:
    endpoint = await add_endpoint(parties, f"http://127.0.0.1:{free_port()}/hooks", ["payment.authorized"])
    tx = await parties.authorized(600)
    event_id = await event_id_of(engine, tx["id"], "payment.authorized")
    delivery = await the_delivery(parties, event_id, lambda d: d["attempts"] >= 3)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert (await deliveries(parties, status="pending"))[0]["id"] == delivery["id"]
    attempts = await parties.api.get(
        f"/merchants/{parties.merchant_id}/webhook_deliveries/{delivery['id']}/attempts", headers=parties.as_merchant
    )
    assert {(a["status_code"], a["error"]) for a in attempts.json()["data"]} == {(None, "connection_error")}
    gone = await parties.api.delete(
        f"/merchants/{parties.merchant_id}/webhook_endpoints/{endpoint['id']}", headers=parties.as_merchant
    )
    assert gone.status_code == 204  # its delivery stops at its next attempt
    assert await deliveries(parties, event_id=str(event_id)) == []


async def test_a_manual_retry_attempts_now(
    parties: Parties, engine: AsyncEngine, temporal_client: Client, stack_settings: Settings
) -> None:
    """A delivery waiting an hour before its next attempt is attempted at once on request; a
    delivered one is sent again by a new run."""
    tx = await parties.authorized(500)  # before the endpoint: the fan-out leaves it to this test
    event_id = await event_id_of(engine, tx["id"], "payment.authorized")
    with receiving(lambda n: 500 if n == 0 else 200) as receiver:
        endpoint = await add_endpoint(parties, receiver.url)
        patient = stack_settings.model_copy(update={"webhook_retry_initial": timedelta(hours=1)})
        await temporal_client.start_workflow(
            WebhookDeliveryWorkflow.run,
            delivery_request(patient, endpoint["id"], event_id, parties.merchant_id),
            id=workflow_id(endpoint["id"], event_id),
            task_queue=stack_settings.webhook_task_queue,
        )
        delivery = await the_delivery(parties, event_id, lambda d: d["attempts"] == 1)
        assert delivery["status"] == "pending"
        url = f"/merchants/{parties.merchant_id}/webhook_deliveries/{delivery['id']}/retry"
        retried = await parties.api.post(url, headers=parties.as_merchant)
        assert retried.status_code == 202, retried.text
        assert (await the_delivery(parties, event_id, delivered, within=60))["attempts"] == 2
        again = await parties.api.post(url, headers=parties.as_merchant)  # finished: a new run, one attempt
        assert again.status_code == 202
        final = await the_delivery(parties, event_id, lambda d: d["attempts"] == 3, within=60)
    assert delivered(final) and len(receiver.events(tx["id"])) == 3


async def test_a_rotation_signs_with_both_secrets_then_only_the_new_one(parties: Parties, engine: AsyncEngine) -> None:
    with receiving() as receiver:
        old = await add_endpoint(parties, receiver.url, ["payment.authorized"])
        rotated = await parties.api.post(
            f"/merchants/{parties.merchant_id}/webhook_endpoints/{old['id']}/rotate_secret",
            headers=parties.as_merchant,
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old["secret"]
        during = await parties.authorized(400)
        (both,) = await eventually(
            lambda: _received(receiver, during["id"]), lambda got: len(got) == 1, "an event during the overlap", 90
        )
        async with engine.begin() as conn:  # 24 h pass (the unit test covers the clock itself)
            await conn.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == old["id"])
                .values(previous_secret_expires_at=WebhookEndpoint.created_at - timedelta(seconds=1))
            )
        after = await parties.authorized(300)
        (only_new,) = await eventually(
            lambda: _received(receiver, after["id"]), lambda got: len(got) == 1, "an event after the overlap", 90
        )
    assert v1_count(both) == 2 and signed_by(both, old["secret"]) and signed_by(both, new)
    assert v1_count(only_new) == 1 and signed_by(only_new, new) and not signed_by(only_new, old["secret"])


async def test_another_merchant_cannot_see_or_change_these_endpoints(parties: Parties, auth) -> None:
    endpoint = await add_endpoint(parties, "http://127.0.0.1:9/hooks", ["payout.paid"])
    base = f"/merchants/{parties.merchant_id}"
    other = auth("merchant", f"mer_{fresh_key()}")
    delivery_id = "whd_" + "0" * 32
    for method, path in [
        ("GET", f"{base}/webhook_endpoints"),
        ("POST", f"{base}/webhook_endpoints/{endpoint['id']}/rotate_secret"),
        ("DELETE", f"{base}/webhook_endpoints/{endpoint['id']}"),
        ("GET", f"{base}/webhook_deliveries"),
        ("GET", f"{base}/webhook_deliveries/{delivery_id}/attempts"),
        ("POST", f"{base}/webhook_deliveries/{delivery_id}/retry"),
    ]:
        response = await parties.api.request(method, path, headers=other)
        assert response.status_code == 404, (method, path, response.text)
    created = await parties.api.post(
        f"{base}/webhook_endpoints", json={"url": "http://127.0.0.1:9/", "enabled_events": ["*"]}, headers=other
    )
    assert created.status_code == 404
    mine = await parties.api.get(f"{base}/webhook_endpoints", headers=parties.as_merchant)
    assert [e["id"] for e in mine.json()["data"]] == [endpoint["id"]]  # untouched
    as_operator = await parties.api.get(f"{base}/webhook_endpoints", headers=auth("operator"))
    assert as_operator.status_code == 200


async def test_a_bad_endpoint_is_a_422_in_the_envelope(parties: Parties) -> None:
    path = f"/merchants/{parties.merchant_id}/webhook_endpoints"
    for body in (
        {"url": "ftp://shop.example/hooks", "enabled_events": ["*"]},
        {"url": "http://127.0.0.1/", "enabled_events": ["payment.unknown"]},
        {"url": "http://127.0.0.1/", "enabled_events": []},
    ):
        response = await parties.api.post(path, json=body, headers=parties.as_merchant)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] in ("invalid_webhook_url", "validation_error")


async def test_an_endpoint_failing_for_the_whole_window_is_disabled_once_and_the_merchant_told(
    parties: Parties, engine: AsyncEngine, encryption_keys: str
) -> None:
    endpoint = await add_endpoint(parties, "http://127.0.0.1:9/hooks", ["payout.paid"])
    window = timedelta(days=3)
    async with engine.begin() as conn:
        await conn.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint["id"])
            .values(failing_since=WebhookEndpoint.created_at - window)
        )
    records = WebhookRecords(session_factory(engine), Keyring.from_spec(encryption_keys))
    give_up = WebhookGiveUp("whd_" + "1" * 32, endpoint["id"], window.total_seconds())
    assert await records.give_up_delivery(give_up) is True
    assert await records.give_up_delivery(give_up) is False  # disabled once, one event
    listed = await parties.api.get(f"/merchants/{parties.merchant_id}/webhook_endpoints", headers=parties.as_merchant)
    assert listed.json()["data"][0]["status"] == "disabled"
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                select(OutboxEvent.type, OutboxEvent.payload).where(OutboxEvent.aggregate_id == endpoint["id"])
            )
        ).all()
    assert [(t, p["merchant_id"]) for t, p in events] == [("webhook_endpoint.disabled", parties.merchant_id)]


@pytest.mark.timeout(300)  # a worker process started, killed and replaced
async def test_worker_killed_mid_delivery_still_delivers(
    parties: Parties, engine: AsyncEngine, temporal_client: Client, stack_settings: Settings, tmp_path: Path
) -> None:
    """SIGKILL the only worker of a queue while the receiver holds its POST: the attempt is
    retried on a new worker after the heartbeat timeout, and the event is delivered."""
    tx = await parties.authorized(450)  # before the endpoint: this test starts the delivery itself
    event_id = await event_id_of(engine, tx["id"], "payment.authorized")
    queue = f"chaos-{fresh_key()}"
    settings = stack_settings.model_copy(
        update={"temporal_task_queue": queue, "webhook_task_queue": f"{queue}-webhooks"}
    )
    with receiving(lambda n: HANG if n == 0 else 200) as receiver:
        endpoint = await add_endpoint(parties, receiver.url)
        first = worker_process(settings, tmp_path / "worker.log")
        try:
            handle = await temporal_client.start_workflow(
                WebhookDeliveryWorkflow.run,
                delivery_request(settings, endpoint["id"], event_id, parties.merchant_id),
                id=workflow_id(endpoint["id"], event_id),
                task_queue=settings.webhook_task_queue,
            )
            await eventually(lambda: _received(receiver, tx["id"]), lambda got: len(got) == 1, "the held POST", 60)
            outcome = await after_worker_replaced(first, settings, tmp_path / "worker.log", handle.result(), 90)
        finally:
            if first.poll() is None:
                first.kill()
    assert outcome == "delivered"
    assert {r.event["id"] for r in receiver.events(tx["id"])} == {str(event_id)}
    assert delivered(await the_delivery(parties, event_id))


async def test_webhook_listen_registers_itself_and_prints_a_payment_s_verified_events(
    parties: Parties, stack_settings: Settings, api_url: str
) -> None:
    port = urlsplit(api_url).port
    env = command_env(stack_settings) | {"PAYMENTS_API_PORT": str(port), "PAYMENTS_LOG_JSON": "false"}
    command = [sys.executable, "-m", "payments", "webhook-listen", "--merchant", parties.merchant_id, "--port", "0"]
    # Started with SIGINT ignored, as a shell's background job is: Ctrl-C must still stop it.
    listener = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=PIPE, stderr=STDOUT, preexec_fn=_ignoring_sigint
    )
    lines: list[str] = []

    async def read() -> None:
        assert listener.stdout is not None
        while line := await listener.stdout.readline():
            lines.append(line.decode())

    reading = asyncio.ensure_future(read())
    try:
        await eventually(_copy(lines), lambda seen: any("listening on" in line for line in seen), "the listener")
        tx = await parties.captured(1234)
        printed = await eventually(
            _copy(lines),
            lambda seen: sum(tx["id"] in line and "verified" in line for line in seen) == 2,
            "both events printed as verified",
            90,
        )
    finally:
        listener.send_signal(signal.SIGINT)
        await asyncio.wait_for(listener.wait(), 30)
        await reading
    assert any(line.startswith("payment.confirmed ") for line in printed)
    assert any("deleted we_" in line for line in lines)
    left = await parties.api.get(f"/merchants/{parties.merchant_id}/webhook_endpoints", headers=parties.as_merchant)
    assert left.json()["data"] == []


def _ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _copy(lines: list[str]) -> Callable[[], Awaitable[list[str]]]:
    async def probe() -> list[str]:
        return list(lines)

    return probe
