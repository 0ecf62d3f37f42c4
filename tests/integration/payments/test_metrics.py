"""/metrics of the API and the worker move with a payment: ours and the Temporal SDK's."""

import asyncio
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from tests.integration.payments.conftest import Parties, worker_process
from tests.services import eventually
from workers.devstack.ports import free_port


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_a_payment_moves_the_api_and_worker_metrics(parties: Parties, worker_metrics_port: int) -> None:
    worker_url = f"http://127.0.0.1:{worker_metrics_port}/metrics"
    async with httpx.AsyncClient(timeout=10) as client:
        worker_before = (await client.get(worker_url)).text
        api_before = (await parties.api.get("/metrics")).text

        tx = await parties.captured(1200)
        assert (await parties.refund(tx["id"])).status_code == 201
        declined = await parties.init(card="pm_card_chargeDeclined")
        assert declined.json()["status"] == "failed"

        worker = await client.get(worker_url)
        api = await parties.api.get("/metrics")
    assert worker.status_code == api.status_code == 200

    def moved(before: str, after: str, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(worker_before, worker.text, "payments_payments_total", outcome="authorized", decline_code="") >= 1
    failed = [
        sample.labels["decline_code"]
        for family in text_string_to_metric_families(worker.text)
        for sample in family.samples
        if sample.name == "payments_payments_total" and sample.labels["outcome"] == "failed"
    ]
    assert failed and all(failed), "a decline is counted with its code"
    assert moved(worker_before, worker.text, "payments_captures_total", currency="usd") >= 1
    assert moved(worker_before, worker.text, "payments_refunds_total", outcome="succeeded") >= 1
    assert "payments_outbox_lag_seconds" in worker.text
    # The Temporal SDK's own metrics, from the worker's runtime, on the same page.
    # authorize and capture run in the workflow task (local activities, with the database steps); the refund's call
    # is an activity task
    assert moved(worker_before, worker.text, "temporal_local_activity_execution_latency_count") >= 5
    assert moved(worker_before, worker.text, "temporal_activity_execution_latency_count") >= 1
    assert moved(worker_before, worker.text, "temporal_workflow_completed_total") >= 2

    init = {"route": "/payments/init", "method": "POST", "status": "201"}
    assert moved(api_before, api.text, "payments_http_request_duration_seconds_count", **init) >= 1
    refund = {"route": "/payments/{tx_id}/refunds", "method": "POST", "status": "201"}
    assert moved(api_before, api.text, "payments_http_request_duration_seconds_count", **refund) >= 1
    assert tx["id"] not in api.text and tx["id"] not in worker.text  # never an id in a label


async def test_payments_worker_serves_its_metrics_port(stack_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    worker = worker_process(stack_settings, tmp_path / "worker.log", metrics_port=port)

    async def scrape() -> str:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.TransportError:
            return ""

    try:
        page = await eventually(
            scrape, lambda text: "temporal_worker_start_total" in text, "the worker's metrics", within=120
        )
    finally:
        worker.terminate()
        worker.wait(15)
    assert "payments_outbox_lag_seconds" in page


async def test_a_taken_metrics_port_costs_the_metrics_not_the_worker(stack_settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        worker = worker_process(stack_settings, log, metrics_port=taken.getsockname()[1])
        try:
            text = await eventually(
                lambda: asyncio.to_thread(log.read_text),
                lambda text: "worker_started" in text,
                "the worker's start",
                within=120,
            )
        finally:
            worker.terminate()
            worker.wait(15)
    assert "worker_metrics_unavailable" in text and "PAYMENTS_WORKER_METRICS_PORT" in text
