"""A merchant webhook connects to the address that was checked (DNS rebinding: a second lookup may
answer with a private address), with the name kept for the Host header and TLS."""

import httpx
import pytest

from payments.activities.merchant_webhook_http import WebhookSender
from payments.activities.merchant_webhook_records import Outgoing, WebhookRecords

URL = "https://hooks.example:8443/payments?shop=1"


class Rebinding:
    """A resolver that answers a public address once, then a private one."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self, host: str) -> list[str]:
        self.asked += 1
        return self.answers.pop(0)


def sender(resolver: Rebinding | None, seen: list[httpx.Request]) -> WebhookSender:
    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    records: WebhookRecords = None  # type: ignore[assignment]  # _exchange reads no records
    if resolver is None:
        return WebhookSender(records, client, 5.0, development=False)
    return WebhookSender(records, client, 5.0, development=False, resolver=resolver)


async def test_the_delivery_connects_to_the_checked_address_by_name() -> None:
    resolver, seen = Rebinding(["93.184.215.14"], ["127.0.0.1"]), list[httpx.Request]()
    status, _, error = await sender(resolver, seen)._exchange(Outgoing(URL, b"{}", ["whsec_x"]))
    assert (status, error) == (204, None)
    assert resolver.asked == 1  # no second lookup that could answer otherwise
    [request] = seen
    assert request.url.host == "93.184.215.14" and request.url.port == 8443
    assert request.url.path == "/payments" and request.url.query == b"shop=1"
    assert request.headers["host"] == "hooks.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.example"  # the certificate is verified against it


@pytest.mark.parametrize("answer", [["10.0.0.5"], ["93.184.215.14", "64:ff9b::a00:5"], ["::ffff:127.0.0.1"]])
async def test_a_name_resolving_to_a_private_address_is_refused_unsent(answer: list[str]) -> None:
    seen: list[httpx.Request] = []
    _, _, error = await sender(Rebinding(answer), seen)._exchange(Outgoing(URL, b"{}", ["whsec_x"]))
    assert error == "refused_address" and not seen


async def test_the_system_resolver_refuses_a_name_of_this_machine() -> None:
    seen: list[httpx.Request] = []
    _, _, error = await sender(None, seen)._exchange(Outgoing("https://localhost:8443/", b"{}", ["whsec_x"]))
    assert error == "refused_address" and not seen
