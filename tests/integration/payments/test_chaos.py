"""Chaos at Stripe and in the worker, each with the invariant it checks: exactly one authorization
and one capture, and the payment ends confirmed."""

import asyncio
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client

from payments.api.app import create_app
from payments.config.settings import Settings
from payments.workflows.payment import workflow_id
from tests.integration.conftest import (
    AUTHORIZE,
    CAPTURE,
    Parties,
    after_worker_replaced,
    stripe_intent,
    worker_process,
)
from tests.services import eventually, fresh_key, serve_in_thread


def _fault(emulator_control, **fault) -> None:
    assert emulator_control("POST", "/faults", json=fault).status_code == 201


def _captures(emulator_control, intent_id: str) -> int:
    return emulator_control("GET", "/counters").json().get("payment_intents.capture", {}).get(intent_id, 0)


def _met_a_409_if_slow(emulator_control, fault: dict, idempotency_key: str) -> None:
    """A Stripe call slower than our timeout is only tested if our retry met it in flight (409)."""
    if fault["action"] == "latency":
        refused = emulator_control("GET", "/counters").json().get("idempotency.in_flight", {})
        assert refused.get(idempotency_key, 0) >= 1, refused


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "error", "times": 3},
        {"action": "rate_limit", "times": 2},
        {"action": "timeout_after_commit", "hang_seconds": 3, "times": 1},
        # Slower than our 2 s timeout: the retry finds the first request still in flight (409).
        {"action": "latency", "latency_ms": 5000, "times": 1},
    ],
    ids=["500s", "429s", "timeout-after-commit", "slower-than-our-timeout"],
)
async def test_authorize_faults_still_give_one_authorization(
    parties: Parties, emulator_control, stack_settings: Settings, fault: dict
) -> None:
    _fault(emulator_control, path=AUTHORIZE, **fault)
    tx = await parties.authorized(900)
    _met_a_409_if_slow(emulator_control, fault, f"{tx['id']}:authorize")
    assert tx["status"] == "authorized"
    intent = stripe_intent(stack_settings, tx["id"])  # asserts exactly one PaymentIntent
    assert intent.status == "requires_capture"
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.json()["status"] == "confirmed"
    assert _captures(emulator_control, intent.id) == 1


@pytest.mark.parametrize(
    "fault",
    [
        {"action": "error", "times": 3},
        {"action": "timeout_after_commit", "hang_seconds": 3, "times": 1},
        {"action": "latency", "latency_ms": 5000, "times": 1},
    ],
    ids=["500s", "timeout-after-commit", "slower-than-our-timeout"],
)
async def test_capture_faults_still_give_one_capture(
    parties: Parties, emulator_control, stack_settings: Settings, fault: dict
) -> None:
    tx = await parties.authorized(800)
    _fault(emulator_control, path=CAPTURE, **fault)
    confirmed = await parties.confirm(tx["id"])
    _met_a_409_if_slow(emulator_control, fault, f"{tx['id']}:capture")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    intent = stripe_intent(stack_settings, tx["id"])
    assert intent.amount_received == 800
    assert _captures(emulator_control, intent.id) == 1


# A new worker process takes seconds to start on an idle machine, a minute on a loaded one.
@pytest.mark.timeout(300)
async def test_worker_killed_between_authorize_and_capture_still_captures_once(
    parties: Parties, stack_settings: Settings, emulator_control, tmp_path: Path
) -> None:
    """SIGKILL the only worker after authorization; confirm; a new worker finishes: one capture."""
    queue = f"chaos-{fresh_key()}"
    settings = stack_settings.model_copy(update={"temporal_task_queue": queue})
    first = worker_process(settings, tmp_path / "worker.log")
    try:
        with serve_in_thread(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=150) as api:
                init = await api.post("/payments/init", json=parties.init_body(4200), headers=parties.as_user)
                assert init.json()["status"] == "authorized", init.text
                confirm = api.post("/payments/confirm", json={"tx_id": init.json()["id"]}, headers=parties.as_user)
                response = await after_worker_replaced(first, settings, tmp_path / "worker.log", confirm, 120)
    finally:
        if first.poll() is None:
            first.kill()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmed"
    intent = stripe_intent(stack_settings, init.json()["id"])
    assert intent.amount_received == 4200 and _captures(emulator_control, intent.id) == 1


@pytest.mark.timeout(300)
async def test_worker_killed_inside_a_slow_authorize_is_retried_after_the_workflow_task_timeout(
    parties: Parties, stack_settings: Settings, emulator_control, temporal_client: Client, tmp_path: Path
) -> None:
    """SIGKILL the only worker while Stripe is slow to authorize (a local activity, inside the
    first workflow task): the server notices when that task times out (3 s, not the call's 30 s
    start-to-close) and a new worker authorizes once, under the same idempotency key, inside its
    workflow task. Stripe's latency ends before the task times out: a retry that raced the killed
    worker's call still in flight at Stripe would get Stripe's 409 and go on as an activity task."""
    queue = f"chaos-{fresh_key()}"
    settings = stack_settings.model_copy(update={"temporal_task_queue": queue})
    slow = {"action": "latency", "path": AUTHORIZE, "latency_ms": 2000}
    fault = emulator_control("POST", "/faults", json=slow).json()

    async def hits() -> int:
        faults = emulator_control("GET", "/faults").json()["data"]
        return next(f["hits"] for f in faults if f["id"] == fault["id"])

    key = fresh_key()
    first = worker_process(settings, tmp_path / "worker.log")
    try:
        with serve_in_thread(create_app(settings)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=150) as api:
                body = parties.init_body(2100, key=key)
                init = asyncio.ensure_future(api.post("/payments/init", json=body, headers=parties.as_user))
                await eventually(hits, lambda n: n >= 1, "the worker to be inside the slow authorize call")
                assert emulator_control("DELETE", f"/faults/{fault['id']}").status_code == 200
                response = await after_worker_replaced(first, settings, tmp_path / "worker.log", init, 120)
    finally:
        if first.poll() is None:
            first.kill()
    assert response.json()["status"] == "authorized", response.text
    stripe_intent(stack_settings, response.json()["id"])  # exactly one PaymentIntent
    history = await temporal_client.get_workflow_handle(workflow_id(parties.user_id, key)).fetch_history()
    (lost_task,) = [
        e.workflow_task_timed_out_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    ]
    assert lost_task.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
    assert not [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
