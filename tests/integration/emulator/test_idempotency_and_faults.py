"""Idempotency as Stripe documents it, and injected faults (for the chaos tests built on them)."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from payments.activities.stripe_errors import final_or_transient
from stripe_emulator.app import create_app
from stripe_emulator.emulator import Emulator
from tests.integration.emulator.conftest import API_KEY, authorize
from tests.services import eventually, serve_in_thread

CREATE = {
    "amount": "1000",
    "currency": "usd",
    "payment_method": "pm_card_visa",
    "confirm": "true",
    "capture_method": "manual",
}


def _post(url: str, path: str, data: dict[str, Any], key: str | None, api_key: str = API_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api_key}"} | ({"Idempotency-Key": key} if key else {})
    return httpx.post(f"{url}{path}", data=data, headers=headers, timeout=10)


def _add_fault(url: str, **fault: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/_emulator/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


def _counters(url: str) -> dict[str, dict[str, int]]:
    return httpx.get(f"{url}/_emulator/counters").json()


def test_same_key_same_params_replays_the_first_response_byte_for_byte(emulator_url: str) -> None:
    first = _post(emulator_url, "/v1/payment_intents", CREATE, "key-1")
    again = _post(emulator_url, "/v1/payment_intents", CREATE, "key-1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(_counters(emulator_url)["payment_intents.create"]) == 1


def test_errors_are_replayed_too(emulator_url: str) -> None:
    declined = CREATE | {"payment_method": "pm_card_chargeDeclined"}
    first = _post(emulator_url, "/v1/payment_intents", declined, "key-decline")
    again = _post(emulator_url, "/v1/payment_intents", declined, "key-decline")
    assert first.status_code == again.status_code == 402
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert sum(_counters(emulator_url)["payment_intents.confirm"].values()) == 1


def test_same_key_other_params_is_an_idempotency_error(client: stripe.StripeClient) -> None:
    client.v1.payment_intents.create(params={"amount": 100, "currency": "usd"}, options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as error:
        client.v1.payment_intents.create(params={"amount": 200, "currency": "usd"}, options={"idempotency_key": "k"})
    assert error.value.http_status == 400


def test_keys_belong_to_one_api_key(emulator_url: str) -> None:
    mine = _post(emulator_url, "/v1/payment_intents", CREATE, "shared-key", "sk_test_a")
    theirs = _post(emulator_url, "/v1/payment_intents", CREATE, "shared-key", "sk_test_b")
    assert mine.json()["id"] != theirs.json()["id"]


def test_a_request_racing_one_in_flight_gets_409(emulator: Emulator, emulator_url: str) -> None:
    # The second request must arrive while the first is held: 3 s is room for a loaded machine.
    _add_fault(emulator_url, action="latency", path="/v1/payment_intents", latency_ms=3000, times=1)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=emulator_url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            slow = asyncio.create_task(http.post("/v1/payment_intents", data=CREATE, headers={"Idempotency-Key": "r"}))

            async def key_held() -> bool:
                return emulator.idempotency.in_flight(API_KEY, "r")

            await eventually(key_held, bool, "the slow request to take the key", within=5)
            fast = await http.post("/v1/payment_intents", data=CREATE, headers={"Idempotency-Key": "r"})
            return [await slow, fast]

    slow, fast = asyncio.run(race())
    assert slow.status_code == 200
    assert fast.status_code == 409 and fast.json()["error"]["code"] == "idempotency_key_in_use"


def test_the_sdk_raises_a_409_in_flight_as_an_api_error_that_we_retry(
    emulator: Emulator, emulator_url: str, client: stripe.StripeClient
) -> None:
    """What the official SDK raises for the race above, and what our activities make of it: a
    transient failure, retried with the key until the first request's answer is there."""
    _add_fault(emulator_url, action="latency", path="/v1/payment_intents", latency_ms=3000, times=1)
    params = {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}

    async def race() -> stripe.StripeError:
        slow = asyncio.create_task(
            asyncio.to_thread(client.v1.payment_intents.create, params=params, options={"idempotency_key": "r"})
        )

        async def key_held() -> bool:
            return emulator.idempotency.in_flight(API_KEY, "r")

        await eventually(key_held, bool, "the slow request to take the key", within=5)
        with pytest.raises(stripe.StripeError) as raced:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "r"})
        await slow
        return raced.value

    error = asyncio.run(race())
    assert type(error) is stripe.APIError and error.http_status == 409  # not IdempotencyError
    failure = final_or_transient(error)
    assert failure.type == "StripeRequestInFlight" and not failure.non_retryable


def test_100_concurrent_creates_with_one_key_make_one_payment_intent(emulator_url: str) -> None:
    _add_fault(emulator_url, action="latency", path="/v1/payment_intents", latency_ms=50)

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=emulator_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=httpx.Limits(max_connections=100),
        ) as http:
            return await asyncio.gather(
                *[
                    http.post("/v1/payment_intents", data=CREATE, headers={"Idempotency-Key": "storm"})
                    for _ in range(100)
                ]
            )

    responses = asyncio.run(storm())
    assert {r.status_code for r in responses} <= {200, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 200}
    assert len(ids) == 1
    assert len(_counters(emulator_url)["payment_intents.create"]) == 1


def test_keys_expire_after_their_ttl() -> None:
    with serve_in_thread(create_app(Emulator(idempotency_ttl_seconds=0))) as url:
        first = _post(url, "/v1/payment_intents", CREATE, "short-lived")
        later = _post(url, "/v1/payment_intents", CREATE, "short-lived")
        assert first.json()["id"] != later.json()["id"]


def test_a_retry_after_timeout_after_commit_returns_the_original(emulator_url: str) -> None:
    # The client gives up well after the commit (2 s: room for a loaded machine) and well before the answer.
    _add_fault(emulator_url, action="timeout_after_commit", path="/v1/payment_intents", hang_seconds=6, times=1)
    impatient = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": emulator_url},
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=2, allow_sync_methods=True),
    )
    params = {
        "amount": 1000,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "capture_method": "manual",
    }
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.payment_intents.create(params=params, options={"idempotency_key": "lost-response"})
    committed = _counters(emulator_url)["payment_intents.create"]
    assert len(committed) == 1  # the work was done although the client never heard back
    patient = stripe.StripeClient(API_KEY, base_addresses={"api": emulator_url}, max_network_retries=0)
    retried = patient.v1.payment_intents.create(params=params, options={"idempotency_key": "lost-response"})
    assert retried.id == next(iter(committed))
    assert len(_counters(emulator_url)["payment_intents.create"]) == 1


def test_a_one_off_hold_met_by_a_replay_holds_the_replay(emulator_url: str) -> None:
    """The chaos run's lost confirm holds the workload's next capture, which may be a retry Stripe
    answers from its idempotency cache: that capture is committed too, so it is held and named."""
    first = _post(emulator_url, "/v1/payment_intents", CREATE, "replayed")
    fault = _add_fault(emulator_url, action="timeout_after_commit", path="/v1/payment_intents", hang_seconds=6, times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{emulator_url}/v1/payment_intents",
            data=CREATE,
            headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "replayed"},
            timeout=2,
        )
    assert _counters(emulator_url)[f"held.{fault['id']}"] == {"/v1/payment_intents": 1}
    assert first.status_code == 200 and len(_counters(emulator_url)["payment_intents.create"]) == 1


def test_a_one_off_fault_met_by_a_request_refused_in_flight_waits_for_the_next(
    emulator: Emulator, emulator_url: str
) -> None:
    _add_fault(emulator_url, action="latency", path="/v1/payment_intents", latency_ms=3000, times=1)

    async def race() -> tuple[httpx.Response, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=emulator_url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            slow = asyncio.create_task(http.post("/v1/payment_intents", data=CREATE, headers={"Idempotency-Key": "r"}))

            async def key_held() -> bool:
                return emulator.idempotency.in_flight(API_KEY, "r")

            await eventually(key_held, bool, "the slow request to take the key", within=5)
            one_off = _add_fault(emulator_url, action="timeout_after_commit", path="/v1/payment_intents", times=1)
            refused = await http.post("/v1/payment_intents", data=CREATE, headers={"Idempotency-Key": "r"})
            await slow
            return refused, one_off

    refused, one_off = asyncio.run(race())
    assert refused.status_code == 409
    waiting = [f for f in httpx.get(f"{emulator_url}/_emulator/faults").json()["data"] if f["id"] == one_off["id"]]
    assert [(f["times"], f["hits"]) for f in waiting] == [(1, 0)]


def test_error_faults_fail_before_doing_anything_for_the_next_n_calls(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    intent = authorize(client)
    _add_fault(emulator_url, action="error", path=r"/v1/payment_intents/[^/]+/capture", times=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as error:
            client.v1.payment_intents.capture(intent.id)
        assert error.value.http_status == 500
    assert "payment_intents.capture" not in _counters(emulator_url)
    assert client.v1.payment_intents.capture(intent.id).status == "succeeded"


def test_rate_limit_faults_are_429(client: stripe.StripeClient, emulator_url: str) -> None:
    fault = _add_fault(emulator_url, action="rate_limit", path="/v1/balance", method="GET")
    with pytest.raises(stripe.RateLimitError):
        client.v1.balance.retrieve()
    assert [f["id"] for f in httpx.get(f"{emulator_url}/_emulator/faults").json()["data"]] == [fault["id"]]
    assert httpx.delete(f"{emulator_url}/_emulator/faults/{fault['id']}").status_code == 200
    assert client.v1.balance.retrieve().object == "balance"


def test_a_zero_probability_fault_never_fires(client: stripe.StripeClient, emulator_url: str) -> None:
    _add_fault(emulator_url, action="error", path="/v1/balance", method="GET", probability=0.0)
    assert all(client.v1.balance.retrieve().object == "balance" for _ in range(20))


def test_a_bad_fault_is_refused(emulator_url: str) -> None:
    assert (
        httpx.post(f"{emulator_url}/_emulator/faults", json={"action": "explode", "path": "/v1/x"}).status_code == 400
    )


def test_keys_survive_a_restart_on_the_same_state_file_until_their_ttl(tmp_path: Path) -> None:
    state = tmp_path / "stripe.sqlite3"
    with serve_in_thread(create_app(Emulator(state))) as url:
        first = _post(url, "/v1/payment_intents", CREATE, "before-restart")
    with serve_in_thread(create_app(Emulator(state))) as url:
        again = _post(url, "/v1/payment_intents", CREATE, "before-restart")
        other = _post(url, "/v1/payment_intents", CREATE | {"amount": "2000"}, "before-restart")
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert len(_counters(url)["payment_intents.create"]) == 1
        assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    with serve_in_thread(create_app(Emulator(state, idempotency_ttl_seconds=0))) as url:
        expired = _post(url, "/v1/payment_intents", CREATE, "before-restart")
        assert expired.status_code == 200 and expired.json()["id"] != first.json()["id"]
