"""`payments webhook-listen`: a local receiver for merchant webhooks that prints each event whose
`Payments-Signature` verifies. With `--merchant` it registers itself as that merchant's endpoint
through the API (and deletes the endpoint on Ctrl-C), so with `make dev` a payment's events show
up signed within a second."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from payments.api.auth import mint_token
from payments.config.merchant_webhook_signing import HEADER, verify
from payments.config.settings import Settings

_OUTPUT = threading.Lock()  # one event's line at a time: print writes its parts separately


def _say(line: str, to_stderr: bool = False) -> None:
    with _OUTPUT:
        print(line, file=sys.stderr if to_stderr else sys.stdout, flush=True)


class ReceiverServer(ThreadingHTTPServer):
    """A thread per delivery, and a listen backlog for a burst of them: with socketserver's default
    of 5, the sixth connection of a burst (the API delivers a payment's events at once) overflowed
    the queue, and its delivery waited a second for a SYN retransmit or was reset."""

    request_queue_size = 128


def _handler(secret: str) -> type[BaseHTTPRequestHandler]:
    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not verify(self.headers.get(HEADER, ""), body, secret, now=time.time()):
                _say("refused: the signature does not verify", to_stderr=True)
                self.send_response(400)
                self.end_headers()
                return
            event = json.loads(body)
            _say(f"{event['type']} {event['id']} verified {json.dumps(event['data']['object'])}")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass  # one line per event (above) is the output

    return Receive


def listen(settings: Settings, port: int, secret: str | None, merchant_id: str | None, events: list[str]) -> int:
    server = ReceiverServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    api = f"http://{settings.api_host}:{settings.api_port}"
    headers = {"Authorization": f"Bearer {mint_token(settings, merchant_id, 'merchant')}"} if merchant_id else {}
    endpoint_id = None
    if merchant_id:
        created = httpx.post(
            f"{api}/merchants/{merchant_id}/webhook_endpoints",
            json={"url": url, "enabled_events": events},
            headers=headers,
        )
        if created.status_code != 201:
            print(f"could not register {url}: {created.status_code} {created.text}", file=sys.stderr)
            server.server_close()
            return 1
        endpoint_id, secret = created.json()["id"], created.json()["secret"]
        print(f"registered {endpoint_id} for {merchant_id} ({', '.join(events)})", flush=True)
    if not secret:
        print("give --secret whsec_… (the endpoint's) or --merchant mer_… to register one", file=sys.stderr)
        server.server_close()
        return 2
    server.RequestHandlerClass = _handler(secret)
    print(f"listening on {url}; Ctrl-C stops", flush=True)
    # Explicit, because a shell that starts us in the background hands us SIGINT ignored; TERM too
    # (a process manager's stop), so that either way the registered endpoint is deleted.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if endpoint_id:
            httpx.delete(f"{api}/merchants/{merchant_id}/webhook_endpoints/{endpoint_id}", headers=headers)
            print(f"deleted {endpoint_id}")
    return 0
