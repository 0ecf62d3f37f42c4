"""Malformed input that used to be a 500 or a workflow retrying forever: each is now a clear 4xx
at once, and nothing is left behind."""

import base64
import json
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from payments.activities.permanent_errors import DATABASE_REFUSED
from payments.config.settings import Settings
from payments.schema.messages import NewMerchant, PaymentRequest
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow
from payments.workflows.merchant_onboarding import workflow_id as onboarding_id
from payments.workflows.payment import PaymentWorkflow
from payments.workflows.payment import workflow_id as payment_id
from tests.services import fresh_key


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize(
    "url",
    [
        "/transactions/usr_x?cursor=not-base64!",
        f"/transactions/usr_x?cursor={_cursor('0001-01-01T00:00:00', 'tx_1')}",  # naive, year 1
        f"/transactions/usr_x?cursor={_cursor('2026-01-01T00:00:00+00:00', 7)}",  # id of the wrong type
        f"/reconciliation/logs?cursor={_cursor('2026-01-01T00:00:00+00:00', str(2**64))}",  # beyond bigint
        f"/reconciliation/runs?cursor={_cursor('99999-01-01T00:00:00+00:00', 'rr_1')}",
    ],
)
async def test_a_cursor_we_did_not_hand_out_is_400_invalid_cursor(api: httpx.AsyncClient, auth, url: str) -> None:
    response = await api.get(url, headers=auth("operator"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


async def test_a_log_id_beyond_bigint_is_a_validation_error(api: httpx.AsyncClient, auth) -> None:
    response = await api.post(
        f"/reconciliation/logs/{2**63}/resolve", json={"resolution": "x"}, headers=auth("operator")
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


async def test_a_payout_key_of_a_thousand_characters_is_refused(api: httpx.AsyncClient, auth) -> None:
    headers = auth("operator") | {"Idempotency-Key": "k" * 1000}
    response = await api.post("/payouts/schedule", json={"merchant_id": "mer_x"}, headers=headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "window",
    [
        {"window_start": "0001-01-01T00:00:00Z", "window_end": "0001-01-02T00:00:00Z"},
        {"window_start": "9998-01-01T00:00:00Z", "window_end": "9999-01-01T00:00:00Z"},
        {"window_start": "2026-01-02T00:00:00Z", "window_end": "2026-01-01T00:00:00Z"},
    ],
    ids=["year-1", "year-9999", "reversed"],
)
async def test_a_reconciliation_window_outside_the_data_is_refused_at_once(
    api: httpx.AsyncClient, auth, window: dict
) -> None:
    response = await api.post("/reconciliation/runs", json=window, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_window"


async def test_a_window_without_a_timezone_is_a_validation_error(api: httpx.AsyncClient, auth) -> None:
    window = {"window_start": "2026-01-01T00:00:00", "window_end": "2026-01-02T00:00:00"}
    response = await api.post("/reconciliation/runs", json=window, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


async def test_another_merchants_payout_account_is_409_at_once(api: httpx.AsyncClient, auth) -> None:
    account = f"acct_{fresh_key()[:16]}"
    body = {"name": "Shop", "currency": "usd", "payout_schedule": "daily", "fee_bps": 100, "payout_account": account}
    first = await api.post("/merchants", json=body, headers=auth("operator"))
    assert first.status_code == 201, first.text
    second = await api.post("/merchants", json=body, headers=auth("operator"))
    assert second.status_code == 409 and second.json()["error"]["code"] == "payout_account_taken"


async def test_a_constraint_violation_fails_the_activity_once_instead_of_retrying(
    api: httpx.AsyncClient, auth, temporal_client: Client, stack_settings: Settings
) -> None:
    """The API's check can be raced; then the database refuses, and no retry will change that."""
    account = f"acct_{fresh_key()[:16]}"
    body = {"name": "Shop", "currency": "usd", "payout_schedule": "daily", "fee_bps": 100, "payout_account": account}
    assert (await api.post("/merchants", json=body, headers=auth("operator"))).status_code == 201
    racer = NewMerchant(merchant_id=f"mer_{fresh_key()}", **body)  # type: ignore[arg-type]
    onboarding = temporal_client.execute_workflow(
        MerchantOnboardingWorkflow.run,
        racer,
        id=onboarding_id(racer.merchant_id),
        task_queue=stack_settings.temporal_task_queue,
    )
    await _fails_once_refused_by_the_database(temporal_client, onboarding, onboarding_id(racer.merchant_id))


async def test_a_refusal_of_a_statement_run_on_the_driver_fails_the_activity_once(
    worker: Worker, temporal_client: Client, stack_settings: Settings
) -> None:
    """record_payment's INSERT runs on asyncpg's own connection (payments/schema/driver.py): its
    refusals (here the foreign key of a merchant we do not have) are as permanent as SQLAlchemy's."""
    user_id, key = f"usr_{fresh_key()}", fresh_key()
    tx_id, merchant_id = f"tx_{fresh_key()}", "mer_missing"
    request = PaymentRequest(tx_id, user_id, merchant_id, 1999, "usd", "pm_card_visa", key, "f" * 64, 600)
    payment = temporal_client.execute_workflow(
        PaymentWorkflow.run, request, id=payment_id(user_id, key), task_queue=stack_settings.temporal_task_queue
    )
    await _fails_once_refused_by_the_database(temporal_client, payment, payment_id(user_id, key))


async def _fails_once_refused_by_the_database(temporal_client: Client, run: Awaitable[Any], workflow_id: str) -> None:
    with pytest.raises(WorkflowFailureError) as failed:
        await run
    cause = failed.value.cause
    while not isinstance(cause, ApplicationError):
        cause = cause.__cause__  # type: ignore[assignment]
    assert cause.type == DATABASE_REFUSED and cause.non_retryable
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    attempts = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert len(attempts) == 1  # one local-activity attempt, recorded once: no retry loop


@pytest.mark.parametrize("amount", [True, 1.0, "100"], ids=["true", "float", "string"])
async def test_amounts_are_strict_integers(api: httpx.AsyncClient, auth, amount: object) -> None:
    body = {
        "user_id": "usr_x",
        "merchant_id": "mer_x",
        "amount": amount,
        "currency": "usd",
        "card_token": "pm_card_visa",
    }
    response = await api.post("/payments/init", json=body, headers=auth("user", "usr_x") | {"Idempotency-Key": "k1"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    merchant = {"name": "Shop", "currency": "usd", "fee_bps": amount}
    response = await api.post("/merchants", json=merchant, headers=auth("operator"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("user_id", ["usr_x:y", "usr_x y", "x" * 70, "mer_abc", ""])
async def test_ids_that_would_reach_a_workflow_id_match_their_pattern(
    api: httpx.AsyncClient, auth, user_id: str
) -> None:
    body = {"user_id": user_id, "merchant_id": "mer_x", "amount": 100, "currency": "usd", "card_token": "pm_card_visa"}
    response = await api.post("/payments/init", json=body, headers=auth("user", user_id) | {"Idempotency-Key": "k2"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "body",
    [
        {"card_token": "card_1234", "idempotency_key": "k"},
        {"card_token": "pm_card_visa"},
        {"card_token": "pm_card_visa", "idempotency_key": "k", "payment_method": "pm_x"},
        {"card_token": ["pm_card_visa"], "idempotency_key": "k"},
    ],
    ids=["not-a-token", "no-key", "unknown-field", "list"],
)
async def test_a_bad_card_to_save_is_a_validation_error(api: httpx.AsyncClient, auth, body: dict) -> None:
    response = await api.post("/users/usr_x/cards", json=body, headers=auth("user", "usr_x"))
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("saved_card_id", ["card_x", "pm_card_visa", "card_" + "0" * 33, 7])
async def test_a_saved_card_id_must_be_one_of_ours(api: httpx.AsyncClient, auth, saved_card_id: object) -> None:
    body = {
        "user_id": "usr_x",
        "merchant_id": "mer_x",
        "amount": 100,
        "currency": "usd",
        "saved_card_id": saved_card_id,
    }
    response = await api.post("/payments/init", json=body, headers=auth("user", "usr_x") | {"Idempotency-Key": "k3"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
