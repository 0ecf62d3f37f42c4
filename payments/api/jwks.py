"""The identity provider's signing keys (RS256), refreshed in the background: a request never waits
on the provider, keeps being served with the last good keys while it is down, and is refused
(503) once those are older than PAYMENTS_JWT_JWKS_MAX_AGE."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)


class KeysUnavailable(Exception):
    """No signing keys younger than the bound: tokens cannot be checked, so none is accepted."""


class UnknownKeyId(Exception):
    """The token names a key the last fetch did not hold (a refresh is asked for)."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        refresh_every: float,
        max_age: float,
        unknown_kid_every: float,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url, self._timeout, self._clock = url, timeout, clock
        self._refresh_every, self._max_age, self._unknown_kid_every = refresh_every, max_age, unknown_kid_every
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jwks-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def key(self, kid: str | None) -> object:
        """The key for `kid` from the last good fetch; never waits on the network."""
        if self._fetched_at is None or self._clock() - self._fetched_at > self._max_age:
            self._ask_for_refresh()
            raise KeysUnavailable("the identity provider's signing keys could not be fetched recently")
        if (jwk := self._keys.get(kid)) is None:
            self._ask_for_refresh()  # the provider may have rotated its keys
            raise UnknownKeyId(f"unknown signing key id {kid!r}")
        return jwk.key

    def _ask_for_refresh(self) -> None:
        """Wake the refresher, at most once per unknown_kid_every (tokens with made-up key ids must
        not make us hammer the provider)."""
        if self._clock() - self._attempted_at >= self._unknown_kid_every:
            self._wanted.set()

    async def refresh(self) -> None:
        self._attempted_at = self._clock()
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = (await client.get(self._url)).raise_for_status()
        keys = jwt.PyJWKSet.from_dict(response.json())
        self._keys = {key.key_id: key for key in keys.keys}
        self._fetched_at = self._clock()

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("jwks_refresh_failed", url=self._url, error=str(exc))
            self._wanted.clear()
            with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow close()'s cancel
                async with asyncio.timeout(self._refresh_every):
                    await self._wanted.wait()
