"""The bench's merchant on a loaded machine: POST /merchants answers 202 when onboarding outlasts its
wait, and the bench polls the merchant until its connected account is open."""

import httpx
import pytest

from bench import payments


async def test_a_merchant_answered_202_is_polled_until_its_account_is_open() -> None:
    polls = 0

    def api(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        if request.method == "POST":
            return httpx.Response(202, json={"id": "mer_1", "payout_account": None})
        polls += 1
        if polls == 1:
            return httpx.Response(404, json={"code": "not_found"})  # the workflow has not written the row
        return httpx.Response(200, json={"id": "mer_1", "payout_account": None if polls == 2 else "acct_1"})

    async with httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(api)) as http:
        assert await payments._merchant(http, "token", "Shop") == "mer_1"
    assert polls == 3


async def test_a_merchant_never_ready_fails_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(payments, "MERCHANT_READY_WITHIN", 1.0)

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202 if request.method == "POST" else 200, json={"id": "mer_1", "payout_account": None})

    async with httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(api)) as http:
        with pytest.raises(RuntimeError, match="not ready after 202"):
            await payments._merchant(http, "token", "Shop")
