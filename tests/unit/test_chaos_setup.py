"""The chaos run's set-up on a loaded machine: POST /merchants answers 202 when onboarding outlasts
its wait, and the harness polls the merchant until its connected account is open."""

from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from devstack import workload
from devstack.workload import Client, Tally, make_parties, make_plan
from payments.config.settings import Settings


def _stack() -> Any:
    return SimpleNamespace(settings=Settings(_env_file=None))  # type: ignore[call-arg]


async def test_a_merchant_answered_202_is_polled_until_its_account_is_open() -> None:
    polls: dict[str, int] = {}

    def api(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/users":
            return httpx.Response(201, json={"id": f"usr_{len(polls)}", "name": "Payer"})
        if request.method == "POST" and path == "/merchants":
            merchant_id = f"mer_{len(polls)}"
            polls[merchant_id] = 0
            return httpx.Response(202, json={"id": merchant_id, "payout_account": None})
        if request.method == "POST" and path.endswith("/cards"):  # each payer's card on file
            return httpx.Response(201, json={"id": f"card_{path.split('/')[2]}"})
        merchant_id = path.rsplit("/", 1)[-1]
        polls[merchant_id] += 1
        if polls[merchant_id] == 1:
            return httpx.Response(404, json={"code": "not_found"})  # the workflow has not written the row
        account = None if polls[merchant_id] == 2 else f"acct_{merchant_id}"
        return httpx.Response(200, json={"id": merchant_id, "payout_account": account})

    deleted: list[str] = []

    def emulator(request: httpx.Request) -> httpx.Response:
        deleted.append(request.url.path)
        return httpx.Response(200, json={})

    plan = make_plan(1, 60)
    async with (
        httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(api)) as http,
        httpx.AsyncClient(base_url="http://emulator", transport=httpx.MockTransport(emulator)) as stripe,
    ):
        parties = await make_parties(_stack(), Client(http, Tally()), stripe, plan)

    assert len(parties.merchants) == plan.merchants
    assert all(n == 3 for n in polls.values())
    assert deleted == [f"/objects/acct_{parties.merchants[0]}"]


async def test_a_merchant_never_ready_fails_the_set_up_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workload, "MERCHANT_READY_WITHIN", 1.0)

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/users":
            return httpx.Response(201, json={"id": "usr_1", "name": "Payer"})
        return httpx.Response(202 if request.method == "POST" else 200, json={"id": "mer_1", "payout_account": None})

    async with (
        httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(api)) as http,
        httpx.AsyncClient(base_url="http://emulator") as stripe,
    ):
        with pytest.raises(RuntimeError, match="not ready after 202"):
            await make_parties(_stack(), Client(http, Tally()), stripe, make_plan(1, 60))
