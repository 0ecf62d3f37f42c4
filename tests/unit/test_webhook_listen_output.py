"""`payments webhook-listen` prints one whole line per verified event, even when the API delivers
several at once (a payment's authorized and confirmed events arrive together)."""

import json
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from payments.cli.merchant_webhook_listen import ReceiverServer, _handler
from payments.config.merchant_webhook_signing import HEADER, new_secret, signature_header


@pytest.fixture
def threads_switch_often() -> Iterator[None]:
    """Switching threads every microsecond, as a loaded machine does at the worst moments."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("threads_switch_often")
def test_events_delivered_at_once_print_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    secret = new_secret()
    server = ReceiverServer(("127.0.0.1", 0), _handler(secret))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    events: list[dict[str, Any]] = [
        {"id": str(n), "type": "payment.confirmed", "data": {"object": {"tx_id": f"tx_{n}", "note": "x" * 2000}}}
        for n in range(120)
    ]

    def deliver(event: dict[str, Any]) -> int:
        body = json.dumps(event).encode()
        headers = {HEADER: signature_header(body, [secret], int(time.time()))}
        return httpx.post(url, content=body, headers=headers).status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(deliver, events)) == {200}
    finally:
        server.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split(" ", 3)[1] for line in lines) == sorted(event["id"] for event in events)
    for line in lines:
        kind, event_id, verified, data = line.split(" ", 3)
        assert (kind, verified, json.loads(data)["tx_id"]) == ("payment.confirmed", "verified", f"tx_{event_id}")
