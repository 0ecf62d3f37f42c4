"""Rate limiting per subject, readiness naming what is down, and Redis trouble not stopping the API."""

import asyncio
import secrets
from ipaddress import ip_network

import httpx

from payments.api.app import create_app
from payments.api.auth import mint_token
from payments.config.ports import free_port
from payments.config.settings import Settings
from tests.services import fresh_key, serve_in_thread


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


async def test_an_anonymous_caller_over_its_budget_is_refused_before_its_body_is_read(
    stack_settings: Settings,
) -> None:
    """Behind a trusted proxy each caller has its own bucket, by X-Forwarded-For's right-most hop
    that is not a proxy; once it is empty, a body is not even waited for."""
    settings = stack_settings.model_copy(
        update={"rate_limit_per_second": 0.01, "rate_limit_burst": 3, "trusted_proxies": [ip_network("127.0.0.1")]}
    )
    caller, neighbour = (f"2001:db8::{fresh_key()[:4]}:{n}" for n in (1, 2))
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            forged_then_real = {"X-Forwarded-For": f"6.6.6.6, {caller}"}
            statuses = [(await client.post("/users", json={}, headers=forged_then_real)).status_code for _ in range(4)]
            assert statuses == [401, 401, 401, 429]
            neighbours = await client.post("/users", json={}, headers={"X-Forwarded-For": neighbour})
            assert neighbours.status_code == 401
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(
                f"POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {caller}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 429"), answer


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"rate_limit_per_second": 0.01, "rate_limit_burst": 3})
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            statuses = [
                (await client.get("/readyz", headers={"X-Forwarded-For": f"2001:db8::{fresh_key()[:4]}"})).status_code
                for _ in range(5)
            ]
    assert 429 in statuses  # every guess at an address was the peer's bucket, 127.0.0.1


async def test_stripes_webhooks_from_its_own_addresses_take_from_a_bucket_of_their_own(
    stack_settings: Settings,
) -> None:
    """At the seed's peak each of Stripe's addresses sends about 35 events a second, near the
    anonymous limit. From an address in `PAYMENTS_STRIPE_WEBHOOK_SOURCES` they take from a bucket of
    their own; from any other address, and to any other path from Stripe's, the anonymous limit holds."""
    settings = stack_settings.model_copy(
        update={
            "rate_limit_per_second": 0.01,
            "rate_limit_burst": 3,
            "trusted_proxies": [ip_network("127.0.0.1")],
            "stripe_webhook_sources": [ip_network("2001:db8:5::/48")],
        }
    )
    stripes, anyone = (f"2001:db8:{net}::{secrets.token_hex(2)}:{secrets.token_hex(2)}" for net in (5, 6))
    unsigned = {"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"}
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as client:

            async def webhook(address: str) -> int:
                headers = unsigned | {"X-Forwarded-For": address}
                return (await client.post("/webhooks/stripe", content=b"{}", headers=headers)).status_code

            assert [await webhook(stripes) for _ in range(6)] == [400] * 6  # refused for its signature only
            assert [await webhook(anyone) for _ in range(4)] == [400, 400, 400, 429]
            elsewhere = [
                (await client.get("/reconciliation/runs", headers={"X-Forwarded-For": stripes})).status_code
                for _ in range(4)
            ]
            assert elsewhere == [401, 401, 401, 429]
