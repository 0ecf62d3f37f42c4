"""Reconciliation's reads of Stripe: plain JSON through the SDK's own requestor, within a budget
of requests a second.

Stripe limits an account's reads (100 a second in live mode, 25 in test mode, and 25 a second to
any one endpoint); past them it answers 429. Reading as fast as it can, one reconciliation worker
asks about 85 list pages a second of one endpoint, and more with its window in slices: it would be
refused, and would take the account's budget from everything else that reads Stripe. So a run
spends at most `per_second` requests a second here; raise it with the limit Stripe grants the
account. A run's slices are read by activities of their own, on whichever workers take them: each
reads within its share of the budget (`share`), so the run keeps to it however they are spread.

An answer is decoded into just the fields its caller reads when the caller says which (a
TypedDict): the settlement's page of 100 balance transactions, each with its whole charge, is
0.2 ms that way against 1.2 ms parsed whole, and the worker no longer spends a third of its time
building and freeing objects nobody reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import msgspec
import stripe
from aiolimiter import AsyncLimiter
from temporalio.exceptions import ApplicationError

from payments.activities.reconciliation_rules import LISTS, Obj
from payments.activities.stripe_errors import final_or_transient


class StripeReads:
    def __init__(self, client: stripe.StripeClient, per_second: float) -> None:
        self._stripe = client
        self._per_second = per_second
        self._whole = AsyncLimiter(per_second, 1)
        self._shared: ContextVar[AsyncLimiter | None] = ContextVar("stripe_reads_share", default=None)

    @contextmanager
    def share(self, fraction: float) -> Iterator[None]:
        """The reads made in the block (and in the tasks it starts) spend `fraction` of the budget,
        a budget of their own: an activity reading one of a run's four slices, a quarter."""
        token = self._shared.set(AsyncLimiter(self._per_second * fraction, 1) if fraction < 1 else None)
        try:
            yield
        finally:
            self._shared.reset(token)

    async def get(self, path: str, shape: Any = Obj, **params: Any) -> Any:
        """A GET through the SDK's own requestor and HTTP client (key, version, headers, timeout,
        its errors), its body decoded once into plain dicts: whole, or as `shape` (a TypedDict)
        has it, every other field skipped. `raw_request_async` would parse each answer into
        OrderedDicts and format the whole body for a debug log line first: on a page of 100 events
        those two cost more than checking them."""
        requestor = self._stripe._requestor
        async with self._shared.get() or self._whole:
            try:
                method, url, headers, post_data, retries, usage, _, _ = requestor._args_for_request_with_retries(
                    "get", path, params, {}, base_address="api", api_mode="V1", usage=["raw_request", "async"]
                )
                body, code, answered = await requestor._get_http_client().request_with_retries_async(
                    method, url, headers, post_data, max_network_retries=retries, _usage=usage
                )
                if not 200 <= code < 300:
                    requestor._interpret_response(body, code, answered, "V1")  # raises the SDK's error
            except stripe.StripeError as exc:
                raise final_or_transient(exc) from exc
        return _decoder(shape).decode(body)

    async def retrieve(self, kind: str, stripe_id: str | None, **params: Any) -> Obj | None:
        """One Stripe object of a kind by id, or None where Stripe has none."""
        if stripe_id is None:
            return None
        try:
            return await self.get(f"/v1/{LISTS[kind]}/{stripe_id}", **params)
        except ApplicationError as refused:
            if (refused.details[0] or {}).get("http_status") == 404:
                return None
            raise


@cache
def _decoder(shape: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(shape)
