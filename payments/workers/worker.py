"""The worker process: polls the `payments` task queue and relays the outbox until told to stop."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from payments.config.heap import tune_collector
from payments.config.redis import redis_client
from payments.config.settings import Settings
from payments.config.temporal import connect
from payments.workers.merchant_webhook_fanout import WebhookFanOut
from payments.workers.metrics import serve_worker_metrics
from payments.workers.open_payments import OpenPaymentsWatch
from payments.workers.outbox_relay import OutboxRelay
from payments.workers.registry import build_worker_parts, interceptors, webhook_worker, workflow_runner, workflows
from payments.workers.schedules import SchedulesWatch, ensure_schedules

log = structlog.get_logger(__name__)

# A workflow's next task goes first to the worker that ran it last; if that worker was killed, the
# task moves to the shared queue only after this wait (SDK default 10 s, stalling every payment
# cached there). A task that waits longer on a busy live worker is simply replayed elsewhere.
STICKY_WAIT = timedelta(seconds=3)


def _metrics_runtime(settings: Settings) -> Runtime | None:
    """The runtime of the worker's `/metrics`. A taken port costs the metrics, not the payments:
    the worker runs on and says so (several workers or stacks may share a machine)."""
    if not settings.worker_metrics_port:
        return None
    try:
        return serve_worker_metrics(settings.worker_metrics_port, settings.worker_metrics_host)
    except OSError as exc:
        log.error("worker_metrics_unavailable", setting="PAYMENTS_WORKER_METRICS_PORT", error=str(exc))
        return None


async def run_worker(settings: Settings) -> None:
    settings.refuse_unsafe_configuration()
    if not settings.redis_url:
        raise RuntimeError("PAYMENTS_REDIS_URL must be set for the worker")
    client = await connect(settings, _metrics_runtime(settings))
    await ensure_schedules(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parts = build_worker_parts(settings, client)
    redis = redis_client(settings.redis_url)
    relay = OutboxRelay(parts.sessions, redis)
    fanout = WebhookFanOut(parts.sessions, client, settings)
    watch = OpenPaymentsWatch(parts.sessions, settings.authorization_expiry)
    schedules = SchedulesWatch(client, settings)
    tune_collector()
    try:
        async with (
            Worker(
                client,
                task_queue=settings.temporal_task_queue,
                workflows=workflows(),
                workflow_runner=workflow_runner(),
                activities=parts.activities,
                interceptors=interceptors(),
                sticky_queue_schedule_to_start_timeout=STICKY_WAIT,
            ),
            webhook_worker(client, settings, parts),
        ):
            log.info("worker_started", task_queue=settings.temporal_task_queue, event_loop=type(loop).__module__)
            await asyncio.gather(relay.run(stop), fanout.run(stop), watch.run(stop), schedules.run(stop))
            log.info("worker_stopping")
    finally:
        await redis.aclose()
        await parts.close()
