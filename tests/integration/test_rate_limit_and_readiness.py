"""Rate limiting per subject, readiness naming what is down, and Redis trouble not stopping the API."""

import httpx

from api.app import create_app
from api.auth import mint_token
from config.settings import Settings
from tests.services import serve_in_thread
from workers.devstack.ports import free_port


def _headers(settings: Settings, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, subject, 'operator')}"}


async def test_ready_when_every_dependency_is_up(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "temporal": "ok"}}


async def test_a_subject_over_its_budget_gets_429_with_retry_after(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"rate_limit_per_second": 0.01, "rate_limit_burst": 3})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            greedy, other = _headers(settings, "op_greedy"), _headers(settings, "op_other")
            statuses = [(await client.post("/users", json={"name": "n"}, headers=greedy)).status_code for _ in range(4)]
            assert statuses == [201, 201, 201, 429]
            limited = await client.post("/users", json={"name": "n"}, headers=greedy)
            assert limited.json()["error"]["code"] == "rate_limited"
            assert int(limited.headers["retry-after"]) >= 1
            assert (await client.post("/users", json={"name": "n"}, headers=other)).status_code == 201


async def test_readiness_names_what_is_down_and_redis_down_does_not_stop_requests(
    stack_settings: Settings,
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    dead_temporal = f"127.0.0.1:{free_port()}"
    settings = stack_settings.model_copy(update={"redis_url": dead_redis, "temporal_address": dead_temporal})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"]["code"] == "not_ready"
            assert "redis" in ready.json()["error"]["message"]
            assert "temporal" in ready.json()["error"]["message"]
            assert "postgres" not in ready.json()["error"]["message"]
            assert ready.headers["retry-after"]
            # Redis down does not stop payments: the limiter falls back to its in-process bucket.
            created = await client.post("/users", json={"name": "n"}, headers=_headers(settings, "op_x"))
            assert created.status_code == 201


async def test_callers_without_a_valid_token_are_limited_by_ip(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"rate_limit_per_second": 0.01, "rate_limit_burst": 3})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            guesses = [{"Authorization": f"Bearer guess-{n}"} for n in range(4)] + [{}]
            statuses = [(await client.get("/reconciliation/runs", headers=h)).status_code for h in guesses]
            assert statuses == [401, 401, 401, 429, 429]


async def test_with_redis_down_the_limiter_still_limits(stack_settings: Settings) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = stack_settings.model_copy(
        update={"redis_url": dead_redis, "rate_limit_per_second": 0.01, "rate_limit_burst": 2}
    )
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            greedy = _headers(settings, "op_greedy_no_redis")
            statuses = [(await client.post("/users", json={"name": "n"}, headers=greedy)).status_code for _ in range(3)]
            assert statuses == [201, 201, 429]


async def test_temporal_unreachable_is_503_not_500(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            response = await client.post(
                "/merchants", json={"name": "m", "currency": "usd"}, headers=_headers(settings, "op_y")
            )
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "service_unavailable"
            assert response.headers["retry-after"]


async def test_database_unreachable_is_503_not_500(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            response = await client.post("/users", json={"name": "n"}, headers=_headers(settings, "op_z"))
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "service_unavailable"
