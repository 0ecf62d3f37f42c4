"""Session fixtures: the real stack starts once, on free ports, only for tests that ask for it."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.temporal import dynamic_config_flags, temporal_cli
from payments.api.app import create_app
from payments.api.auth import Role, mint_token
from payments.api.routes.stripe_webhooks import SUBSCRIBED_EVENTS
from payments.config.keyring import Keyring, new_key_spec
from payments.config.logs import configure_logging
from payments.config.ports import free_port
from payments.config.settings import Settings
from payments.config.stripe_client import stripe_client, stripe_http
from payments.config.temporal import connect, data_converter
from payments.config.tracing import start_tracing
from payments.schema.migrate import upgrade
from payments.workers.merchant_webhook_fanout import WebhookFanOut
from payments.workers.metrics import serve_worker_metrics
from payments.workers.open_payments import OpenPaymentsWatch
from payments.workers.registry import (
    build_worker_parts,
    interceptors,
    sandboxed_workflow_runner,
    webhook_worker,
    workflows,
)
from payments.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES
from stripe_emulator.app import create_app as create_emulator
from tests.services import embedded_postgres, embedded_redis, scratch_database, serve_in_thread

TASK_QUEUE = "payments-test"
COUNTS = "counts"  # a test's user property whose text is printed in the run's summary
# The tests run on the repository's development secrets, as `make dev` does (inherited by the
# worker processes some tests start).
os.environ["PAYMENTS_ENV"] = "development"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The counts tests report (e.g. the hostile suite's), from whichever process ran them: under
    `pytest -n 2` a test's own output never reaches the terminal, its report's properties do."""
    lines = [
        text
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, text in getattr(report, "user_properties", [])
        if name == COUNTS
    ]
    if lines:
        terminalreporter.section("counts")
        for text in sorted(lines):
            terminalreporter.write_line(text)


@contextmanager
def _outside_pytest_tmp() -> Iterator[Path]:
    """A folder for services that run as another user (PostgreSQL, when we are root). Not under
    pytest's temp root: every pytest session that starts resets that root to mode 0700, which
    would lock a running PostgreSQL out of its data when two sessions share a machine."""
    with tempfile.TemporaryDirectory(prefix="payments-test-", ignore_cleanup_errors=True) as folder:
        yield Path(folder)


@pytest.fixture
def service_tmp() -> Iterator[Path]:
    with _outside_pytest_tmp() as folder:
        yield folder


@pytest.fixture(scope="session")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every log line of the session goes through the real pipeline into this file."""
    path = tmp_path_factory.mktemp("logs") / "session.log"
    stream = path.open("a", buffering=1)
    configure_logging("INFO", json=True, stream=stream)
    return path


@pytest.fixture(scope="session")
def encryption_keys() -> str:
    return new_key_spec("test1")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    external = os.environ.get("PAYMENTS_DATABASE_URL")
    if external:
        with scratch_database(external) as url:
            upgrade(url)
            yield url
        return
    with _outside_pytest_tmp() as pg, embedded_postgres(pg) as server_url, scratch_database(server_url) as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("PAYMENTS_REDIS_URL")
    if external:
        yield external  # tests use unique keys, so a shared Redis is safe
        return
    with embedded_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def stripe_api_base() -> Iterator[str]:
    """The emulator, its platform balance topped up as an operator would: the tests' merchants pay
    a 2.5 % fee, below Stripe's 2.9 % + 30 cents, so their payouts alone would overdraw it."""
    with serve_in_thread(create_emulator()) as url:
        httpx.post(f"{url}/_emulator/seed/topup", json={"amount": 10**10, "currency": "usd"}).raise_for_status()
        yield url


@pytest.fixture(scope="session")
def temporal_metrics_port() -> int:
    """Where the Temporal dev server serves its own metrics (workflow task attempts, for one)."""
    return free_port()


@pytest_asyncio.fixture(scope="session")
async def temporal_env(encryption_keys: str, temporal_metrics_port: int) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=data_converter(Keyring.from_spec(encryption_keys)),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        dev_server_extra_args=["--metrics-port", str(temporal_metrics_port), *dynamic_config_flags()],
    )
    try:
        yield env
    finally:
        await env.shutdown()


class RecentSpans(SpanExporter):
    """The session's latest finished spans, in memory (bounded: every test of the stack is traced).

    Spans end on the API's, the worker's and the activities' threads while a test reads them,
    so reads take a copy under the lock that writes hold.
    """

    def __init__(self) -> None:
        self._spans: deque[ReadableSpan] = deque(maxlen=20_000)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    @property
    def spans(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)


@pytest.fixture(scope="session")
def traces() -> RecentSpans:
    """Tracing on for the stack the tests start (installed before the API and the worker)."""
    recent = RecentSpans()
    start_tracing("payments-test", None, SimpleSpanProcessor(recent))
    return recent


@pytest.fixture(scope="session")
def stack_settings(
    traces: RecentSpans,
    log_file: Path,
    database_url: str,
    redis_url: str,
    stripe_api_base: str,
    temporal_env: WorkflowEnvironment,
    encryption_keys: str,
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=TASK_QUEUE,
        stripe_api_base=stripe_api_base,
        encryption_keys=SecretStr(encryption_keys),
        rate_limit_per_second=1000,
        rate_limit_burst=1000,
        stripe_timeout_seconds=2.0,  # the chaos tests' lost responses time out quickly
        reconciliation_margin=timedelta(seconds=5),  # the reconciliation tests judge young objects
        reconciliation_stuck_after=timedelta(seconds=5),
        reconciliation_stripe_reads_per_second=1000,  # the emulator has no rate limit
        dispute_read_back_interval=timedelta(seconds=5),  # a lost dispute webhook is caught up quickly
        webhook_retry_initial=timedelta(milliseconds=300),  # a failing receiver is retried within seconds
        webhook_retry_max=timedelta(seconds=2),
        webhook_task_queue=f"{TASK_QUEUE}-webhooks",
    )


@pytest.fixture(scope="session")
def worker_metrics_port() -> int:
    return free_port()


@pytest_asyncio.fixture(scope="session")
async def worker(stack_settings: Settings, worker_metrics_port: int) -> AsyncIterator[Worker]:
    """The worker as `payments worker` runs it: its client on a runtime whose metrics it serves, and
    the webhook fan-out and the open payments' gauges (not the Redis relay: tests relay to streams
    of their own)."""
    runtime = serve_worker_metrics(worker_metrics_port)
    client = await connect(stack_settings, runtime)
    parts = build_worker_parts(stack_settings, client)
    running = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=workflows(),
        workflow_runner=sandboxed_workflow_runner(),
        activities=parts.activities,
        interceptors=interceptors(),
    )
    stopped = asyncio.Event()
    fanout = asyncio.ensure_future(WebhookFanOut(parts.sessions, client, stack_settings).run(stopped))
    watch = OpenPaymentsWatch(parts.sessions, stack_settings.authorization_expiry, interval_seconds=0.5)
    watching = asyncio.ensure_future(watch.run(stopped))
    async with running, webhook_worker(client, stack_settings, parts):
        yield running
    stopped.set()
    await asyncio.gather(fanout, watching)
    await parts.close()


@pytest_asyncio.fixture(scope="session")
async def stripe_sdk(stack_settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    """Our Stripe client as the worker and the API build it (async calls only), for tests that
    run activities themselves."""
    http = stripe_http(stack_settings)
    yield stripe_client(stack_settings, http)
    await http.close_async()


@pytest.fixture(scope="session")
def api_url(stack_settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(stack_settings)) as url:
        yield url


@pytest.fixture(scope="session")
def stripe_webhooks(api_url: str, stripe_api_base: str, stack_settings: Settings) -> None:
    """The emulator delivers signed events to the API, as Stripe would."""
    secret = stack_settings.stripe_webhook_secret.get_secret_value()
    endpoint = {"url": f"{api_url}/webhooks/stripe", "secret": secret, "enabled_events": list(SUBSCRIBED_EVENTS)}
    httpx.post(f"{stripe_api_base}/_emulator/webhook_endpoints", json=endpoint).raise_for_status()


@pytest_asyncio.fixture
async def api(api_url: str, worker: Worker, stripe_webhooks: None) -> AsyncIterator[httpx.AsyncClient]:
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends (httpx keeps them 5 s too): a
    # request sent on one the server is closing at that moment fails with ReadError.
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as client:
        yield client


@pytest.fixture
def auth(stack_settings: Settings) -> Any:
    """auth("operator") -> headers with a fresh token for that role and subject."""

    def headers(role: Role, subject: str = "op_test") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(stack_settings, subject, role)}"}

    return headers


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client
