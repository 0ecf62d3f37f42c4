"""A merchant's webhook receiver for `make bench --webhooks`: answers 200 to every POST and counts
them, so the bench can time payments whose merchant has an endpoint subscribed to everything."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from payments.cli.merchant_webhook_listen import ReceiverServer


@dataclass
class Received:
    url: str
    count: int = 0


@contextmanager
def receiving_webhooks() -> Iterator[Received]:
    lock = threading.Lock()
    received = Received("")

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                received.count += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ReceiverServer(("127.0.0.1", 0), Answer)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
