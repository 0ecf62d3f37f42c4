"""A merchant's webhook receiver for the tests: a real HTTP server (uvicorn, on a free port) that
records each request and answers what the test tells it to."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.services import serve_in_thread

HANG = 0  # an answer that never comes (until the receiver closes): a receiver stuck mid-request


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    answer: Callable[[int], int] = lambda n: 200  # the status of the n-th request (0-based)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _released: threading.Event = field(default_factory=threading.Event)

    def events(self, tx_id: str) -> list[Received]:
        return [r for r in self.received if r.event["data"]["object"].get("tx_id") == tx_id]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        status = self.answer(len(self.received))
        self.received.append(Received({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        if status == HANG:
            await asyncio.to_thread(self._released.wait, 120)
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"answered {status}".encode()})


@contextmanager
def receiving(answer: Callable[[int], int] = lambda n: 200) -> Iterator[Receiver]:
    receiver = Receiver(answer)
    with serve_in_thread(receiver) as url:
        receiver.url = f"{url}/hooks"
        try:
            yield receiver
        finally:
            receiver._released.set()  # a request held by HANG answers, so the server can stop
