"""One attempt of a merchant webhook: read what to send, POST it signed (the address checked again
first), record what came back. A non-2xx answer or no answer is a recorded attempt, not an
activity failure: the workflow owns the schedule of the next one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
from temporalio import activity

from payments.activities.heartbeat import heartbeating
from payments.activities.merchant_webhook_records import ANSWER_KEPT_BYTES, Answer, Outgoing, WebhookRecords
from payments.config.merchant_webhook_signing import HEADER, signature_header
from payments.config.merchant_webhook_urls import Resolver, UnsafeWebhookUrl, check_webhook_url, resolve
from payments.schema.messages import WebhookAttemptResult, WebhookDeliveryRequest

USER_AGENT = "Payments-Webhooks/1.0"


def pinned(url: httpx.URL, addresses: list[str], headers: dict[str, str]) -> tuple[httpx.URL, dict[str, str]]:
    """The request to the first checked address instead of the name (no second lookup), with the
    name kept where the receiver and TLS see it: the Host header, and the TLS server name, so the
    certificate is still verified against the name. No addresses: by name (development)."""
    if not addresses:
        return url, {}
    headers["Host"] = url.netloc.decode("ascii")
    return url.copy_with(host=addresses[0].split("%", 1)[0]), {"sni_hostname": url.host}


class WebhookSender:
    def __init__(
        self,
        records: WebhookRecords,
        client: httpx.AsyncClient,
        timeout: float,
        development: bool,
        resolver: Resolver = resolve,
    ) -> None:
        self._records = records
        self._client = client
        self._timeout = timeout
        self._development = development
        self._resolver = resolver

    @activity.defn
    async def attempt_delivery(self, request: WebhookDeliveryRequest) -> WebhookAttemptResult:
        outgoing = await self._records.outgoing(request)
        if outgoing is None:
            return WebhookAttemptResult(request.delivery_id, "gone")
        answer = await heartbeating(self._post(outgoing))
        if not await self._records.record_attempt(request.delivery_id, answer):
            return WebhookAttemptResult(request.delivery_id, "gone")
        outcome = "delivered" if answer.delivered else "retry"
        return WebhookAttemptResult(request.delivery_id, outcome, answer.status_code)

    async def _post(self, outgoing: Outgoing) -> Answer:
        attempted_at, started = datetime.now(UTC), time.monotonic()
        status_code, head, error = await self._exchange(outgoing)
        return Answer(attempted_at, int((time.monotonic() - started) * 1000), status_code, head, error)

    async def _exchange(self, outgoing: Outgoing) -> tuple[int | None, bytes, str | None]:
        """(status code, the answer's first kilobyte, what went wrong when nothing answered)."""
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await check_webhook_url(outgoing.url, self._development, self._resolver)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    HEADER: signature_header(outgoing.body, outgoing.secrets, int(time.time())),
                }
                url, extensions = pinned(httpx.URL(outgoing.url), addresses, headers)
                async with self._client.stream(
                    "POST", url, content=outgoing.body, headers=headers, extensions=extensions
                ) as sent:
                    head = b""
                    async for chunk in sent.aiter_bytes():
                        head += chunk
                        if len(head) >= ANSWER_KEPT_BYTES:
                            break
                    return sent.status_code, head, None
        except UnsafeWebhookUrl:
            return None, b"", "refused_address"
        except (TimeoutError, httpx.TimeoutException):
            return None, b"", "timeout"
        except httpx.HTTPError:
            return None, b"", "connection_error"
