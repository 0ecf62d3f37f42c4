"""What the worker runs: every workflow class, and the activities with their clients wired in."""

from __future__ import annotations

import compileall
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import payments.workflows as workflows_package
from payments.activities.dispute_records import DisputeRecords
from payments.activities.merchant_webhook_http import WebhookSender
from payments.activities.merchant_webhook_records import WebhookRecords
from payments.activities.merchants import MerchantActivities
from payments.activities.metrics import CountRetries
from payments.activities.payment_records import PaymentRecords
from payments.activities.payout_records import PayoutRecords
from payments.activities.permanent_errors import PermanentDatabaseErrors
from payments.activities.reconciliation import Reconciler, Tuning
from payments.activities.reconciliation_runs import ReconciliationRuns
from payments.activities.recovery_records import RecoveryRecords
from payments.activities.refund_records import RefundRecords
from payments.activities.stripe_balance import StripeBalance
from payments.activities.stripe_disputes import StripeDisputes
from payments.activities.stripe_payments import StripePayments
from payments.activities.stripe_reads import StripeReads
from payments.activities.stripe_refunds import StripeRefunds
from payments.activities.stripe_transfers import StripeTransfers
from payments.config.keyring import Keyring
from payments.config.redis import redis_client
from payments.config.settings import Settings
from payments.config.stripe_client import stripe_client, stripe_http
from payments.schema.database import create_engine, session_factory
from payments.schema.party_cache import PartyCache
from payments.workers.lost_workflows import TemporalLostWorkflows
from payments.workflows.dispute import DisputeWorkflow
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow
from payments.workflows.merchant_webhook_delivery import WebhookDeliveryWorkflow
from payments.workflows.payment import PaymentWorkflow
from payments.workflows.payment_catch_up import PaymentCatchUpWorkflow
from payments.workflows.payout import MerchantPayoutWorkflow, PayoutRunWorkflow
from payments.workflows.reconciliation import ReconciliationWorkflow
from payments.workflows.recovery import BalanceRecoveryWorkflow, RecoveryRunWorkflow
from payments.workflows.refund import RefundSettlementWorkflow, RefundWorkflow
from payments.workflows.stripe_balance import StripeBalanceWorkflow


def workflows() -> list[type]:
    return [
        MerchantOnboardingWorkflow,
        PaymentWorkflow,
        PaymentCatchUpWorkflow,
        RefundWorkflow,
        RefundSettlementWorkflow,
        MerchantPayoutWorkflow,
        PayoutRunWorkflow,
        ReconciliationWorkflow,
        DisputeWorkflow,
        BalanceRecoveryWorkflow,
        RecoveryRunWorkflow,
        StripeBalanceWorkflow,
        WebhookDeliveryWorkflow,  # run by webhook_worker; listed for the replay tests
    ]


def interceptors() -> list[Interceptor]:
    return [CountRetries(), PermanentDatabaseErrors()]  # the count sees a permanent error as permanent


def workflow_runner() -> WorkflowRunner:
    """The worker runs workflows outside the sandbox: the sandbox's per-run import of the workflow
    module and its `exec` around every activation and payload cost about a sixth of the worker's CPU
    per payment (docs/capacity.md). Determinism is checked where it costs nothing in production:
    the replay tests, the workflow tests and the integration tests' worker run every workflow in
    the sandbox (sandboxed_workflow_runner)."""
    return UnsandboxedWorkflowRunner()


def sandboxed_workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with the I/O libraries our activity modules import passed through: workflows
    never call them, and re-importing them per workflow run is slow and warns of late imports.

    The sandbox imports the workflow modules again for every run: their bytecode is written first,
    because under PYTHONDONTWRITEBYTECODE (set on some machines and images) nothing else writes it
    and every run compiled payments/workflows/payment.py from source."""
    compileall.compile_dir(Path(workflows_package.__file__).parent, quiet=1)
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "redis", "sqlalchemy", "asyncpg", "stripe", "structlog", "httpx"
        )
    )


@dataclass
class WorkerParts:
    activities: list[Callable[..., Any]]
    webhook_activities: list[Callable[..., Any]]
    sessions: async_sessionmaker[AsyncSession]
    close: Callable[[], Awaitable[None]]


def webhook_worker(client: Client, settings: Settings, parts: WorkerParts) -> Worker:
    """The worker of the webhook task queue: deliveries only, `webhook_concurrency` at a time."""
    return Worker(
        client,
        task_queue=settings.webhook_task_queue,
        workflows=[WebhookDeliveryWorkflow],
        workflow_runner=workflow_runner(),
        activities=parts.webhook_activities,
        interceptors=interceptors(),
        max_concurrent_activities=settings.webhook_concurrency,
        max_concurrent_workflow_tasks=settings.webhook_concurrency,
    )


def build_worker_parts(settings: Settings, temporal: Client) -> WorkerParts:
    """The activity callables with their clients, and a function that closes what they hold."""
    if not settings.database_url:
        raise RuntimeError("PAYMENTS_DATABASE_URL must be set for the worker")
    engine = create_engine(settings.database_url, settings.db_pool_size)
    sessions = session_factory(engine)
    redis = redis_client(settings.redis_url) if settings.redis_url else None  # for cache invalidation
    stripe_connections = stripe_http(settings)
    stripe = stripe_client(settings, stripe_connections)
    keyring = Keyring.from_spec(settings.encryption_keys.get_secret_value())
    merchants = MerchantActivities(sessions, stripe, PartyCache(redis))
    records, payments = PaymentRecords(sessions, keyring), StripePayments(stripe)
    refunds, stripe_refunds = RefundRecords(sessions), StripeRefunds(stripe)
    payouts, transfers = PayoutRecords(sessions), StripeTransfers(stripe)
    disputes, stripe_disputes = DisputeRecords(sessions), StripeDisputes(stripe)
    recoveries = RecoveryRecords(sessions)
    tuning = Tuning(
        settings.reconciliation_margin,
        settings.reconciliation_stuck_after,
        settings.reconciliation_page_size,
        settings.reconciliation_pages_per_activity,
        settings.payout_hold,
        settings.reconciliation_slices,
    )
    webhooks = WebhookRecords(sessions, keyring)
    # No redirects followed (httpx's default): a 3xx is the endpoint's answer, never a hop elsewhere.
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
    sender = WebhookSender(webhooks, http, settings.webhook_timeout_seconds, settings.env == "development")
    lost = TemporalLostWorkflows(temporal, settings)
    reads = StripeReads(stripe, settings.reconciliation_stripe_reads_per_second)
    # Reconciliation's own reads on connections of their own, each statement planned anew: its seen
    # set starts each run empty (as its statistics say) and grows by the window, and a generic plan
    # cached while it was small scanned all of it for every page until autovacuum analyzed it. Its
    # reads of our rows by key keep their generic plans, on the worker's pool.
    reconciling = create_engine(settings.database_url, settings.reconciliation_slices, custom_plans=True)
    reconciler = Reconciler(
        session_factory(reconciling), reads, lost, tuning, (records, refunds, payouts, payments), sessions
    )
    reconciliation_runs = ReconciliationRuns(sessions)
    activities: list[Callable[..., Any]] = [
        merchants.record_merchant,
        merchants.create_connected_account,
        merchants.attach_payout_account,
        records.record_payment,
        records.record_status,
        records.record_capture,
        records.follow_stripe,
        payments.authorize_payment,
        payments.reauthorize_payment,
        payments.capture_payment,
        payments.capture_payment_with_fee,
        payments.void_payment,
        payments.read_payment_intent,
        refunds.reserve_refund,
        refunds.record_refund,
        refunds.fail_refund,
        stripe_refunds.refund_at_stripe,
        stripe_refunds.read_refund,
        payouts.reserve_payout,
        payouts.record_payout_paid,
        payouts.fail_payout,
        payouts.payable_merchants,
        transfers.transfer_payout,
        disputes.record_dispute,
        disputes.record_dispute_status,
        stripe_disputes.read_dispute,
        stripe_disputes.send_evidence,
        stripe_disputes.accept_dispute,
        recoveries.plan_recovery,
        recoveries.record_reversal,
        recoveries.merchants_in_deficit,
        transfers.reverse_transfer,
        reconciliation_runs.open_run,
        reconciliation_runs.open_run_from_watermark,
        reconciler.reconcile_page,
        reconciliation_runs.close_run,
        StripeBalance(sessions, stripe).check_stripe_balance,
    ]
    webhook_activities: list[Callable[..., Any]] = [sender.attempt_delivery, webhooks.give_up_delivery]

    async def close() -> None:
        await http.aclose()
        await stripe_connections.close_async()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
        await reconciling.dispose()

    return WorkerParts(activities, webhook_activities, sessions, close)
