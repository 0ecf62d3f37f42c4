"""/metrics of the API and the worker move with a payment: ours and the Temporal SDK's."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from payments.config.ports import free_port
from payments.config.settings import Settings
from payments.schema.tables import ReconciliationLog, ReconciliationRun, Transaction
from tests.exported_metrics import TEMPORAL_SERVER, value
from tests.integration.conftest import Parties, worker_process
from tests.services import eventually, fresh_key


async def test_a_payment_moves_the_api_and_worker_metrics(parties: Parties, worker_metrics_port: int) -> None:
    worker_url = f"http://127.0.0.1:{worker_metrics_port}/metrics"
    async with httpx.AsyncClient(timeout=10) as client:
        worker_before = (await client.get(worker_url)).text
        api_before = (await parties.api.get("/metrics", headers=parties.auth("operator"))).text

        tx = await parties.captured(1200)
        assert (await parties.refund(tx["id"])).status_code == 201
        declined = await parties.init(card="pm_card_chargeDeclined")
        assert declined.json()["status"] == "declined"

        worker = await client.get(worker_url)
        api = await parties.api.get("/metrics", headers=parties.auth("operator"))
    assert worker.status_code == api.status_code == 200

    def moved(before: str, after: str, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(worker_before, worker.text, "payments_payments_total", outcome="authorized", decline_code="") >= 1
    declines = [
        sample.labels["decline_code"]
        for family in text_string_to_metric_families(worker.text)
        for sample in family.samples
        if sample.name == "payments_payments_total" and sample.labels["outcome"] == "declined"
    ]
    assert declines and all(declines), "a decline is counted with its code"
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


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(url)).text


async def test_an_old_open_payment_and_a_disagreement_under_review_show_on_the_worker(
    parties: Parties, engine: AsyncEngine, worker_metrics_port: int
) -> None:
    """A payment left pending for 30 days (older than any a test leaves behind) and a reconciliation
    row left for review show on the worker's /metrics, and clear once they are settled."""
    url, age = f"http://127.0.0.1:{worker_metrics_port}/metrics", timedelta(days=30).total_seconds()
    assert value(await scrape(url), "payments_open_payment_age_seconds", status="pending") < age
    assert value(await scrape(url), "payments_authorization_expiry_seconds") == timedelta(days=7).total_seconds()
    tx_id, run_id, discrepancy = f"tx_{fresh_key()}", f"run_{fresh_key()}", f"probe_{fresh_key()[:8]}"
    stuck = insert(Transaction).values(
        id=tx_id,
        user_id=parties.user_id,
        merchant_id=parties.merchant_id,
        amount=1000,
        currency="usd",
        status="pending",
        idempotency_key=tx_id,
        request_fingerprint="0" * 64,
        card_token=b"x",
        card_token_key_id="k",
        workflow_id=f"payment:{tx_id}",
        created_at=text("now() - interval '30 days'"),
    )
    window = {"window_start": datetime.now(UTC), "window_end": datetime.now(UTC)}
    async with engine.begin() as conn:
        await conn.execute(stuck)
        await conn.execute(insert(ReconciliationRun).values(id=run_id, status="finished", **window))
        await conn.execute(
            insert(ReconciliationLog).values(
                run_id=run_id, tx_id=tx_id, discrepancy=discrepancy, subject=tx_id, resolution_status="needs_review"
            )
        )

    async def gauges() -> tuple[float, float]:
        """(open disagreements of the probe's class, age of the oldest pending payment)"""
        page = await scrape(url)
        return (
            value(page, "payments_stripe_disagreements", discrepancy=discrepancy),
            value(page, "payments_open_payment_age_seconds", status="pending"),
        )

    try:
        _, oldest = await eventually(gauges, lambda seen: seen[0] == 1, "the gauges to show the rows")
        assert oldest >= age
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                update(ReconciliationLog).where(ReconciliationLog.run_id == run_id).values(resolution_status="resolved")
            )
            await conn.execute(delete(Transaction).where(Transaction.id == tx_id))
    _, oldest = await eventually(gauges, lambda seen: seen[0] == 0, "the gauges to clear")
    assert oldest < age


@workflow.defn(sandboxed=False)
class FailsItsFirstTask:
    """Raises (a workflow task failure, not a workflow failure) the first time a workflow runs."""

    failed: ClassVar[set[str]] = set()

    @workflow.run
    async def run(self) -> str:
        if workflow.info().workflow_id not in self.failed:
            self.failed.add(workflow.info().workflow_id)
            raise RuntimeError("a bug in a workflow task")
        return "retried"


def retried_tasks(page: str) -> float:
    """Workflow tasks started at an attempt above 1: the server's attempt histogram, less its first bucket."""
    return value(page, "workflow_task_attempt_count") - value(page, "workflow_task_attempt_bucket", le="1")


async def test_a_failed_workflow_task_counts_as_an_attempt_above_one(
    temporal_client: Client, temporal_metrics_port: int
) -> None:
    url = f"http://127.0.0.1:{temporal_metrics_port}/metrics"
    before = retried_tasks(await scrape(url))
    queue = f"fails-first-{fresh_key()}"
    async with Worker(temporal_client, task_queue=queue, workflows=[FailsItsFirstTask]):
        result = await temporal_client.execute_workflow(
            FailsItsFirstTask.run, id=f"fails-first-{fresh_key()}", task_queue=queue
        )
    assert result == "retried"

    async def retried() -> float:
        return retried_tasks(await scrape(url))

    await eventually(retried, lambda count: count >= before + 1, "the retried task counted")
    page = await scrape(url)
    assert TEMPORAL_SERVER <= {
        sample.name for family in text_string_to_metric_families(page) for sample in family.samples
    }


async def test_the_api_metrics_answer_operators_only(parties: Parties) -> None:
    anonymous = await parties.api.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"]
    assert (await parties.api.get("/metrics", headers=parties.as_user)).status_code == 403
    assert (await parties.api.get("/metrics", headers=parties.auth("operator"))).status_code == 200
