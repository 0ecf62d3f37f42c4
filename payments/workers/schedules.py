"""The Temporal Schedules the worker keeps in place: `payouts-daily`, `payouts-monthly`,
`reconciliation`, `negative-balance-recovery` and `stripe-balance`.
Created or updated at every worker start, so changing a setting and restarting is enough; and
created again by a running worker when Temporal comes back without them (its database lost),
followed by a reconciliation run that settles what the lost workflows left in flight."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from payments.config.settings import Settings
from payments.schema.messages import PayoutRunInput, ReconciliationInput, RecoveryRunInput
from payments.workers.polling import poll_until_stopped
from payments.workflows.payout import PayoutRunWorkflow
from payments.workflows.reconciliation import ReconciliationWorkflow
from payments.workflows.recovery import RecoveryRunWorkflow
from payments.workflows.stripe_balance import StripeBalanceWorkflow

PAYOUT_SCHEDULES = {"daily": "payouts-daily", "monthly": "payouts-monthly"}
RECONCILIATION_SCHEDULE = "reconciliation"
RECOVERY_SCHEDULE = "negative-balance-recovery"
STRIPE_BALANCE_SCHEDULE = "stripe-balance"

log = structlog.get_logger(__name__)


def payout_schedule(settings: Settings, cadence: str) -> Schedule:
    calendar = ScheduleCalendarSpec(
        hour=[ScheduleRange(settings.payout_hour)],
        minute=[ScheduleRange(settings.payout_minute)],
        second=[ScheduleRange(0)],
        day_of_month=[ScheduleRange(settings.payout_month_day)] if cadence == "monthly" else [ScheduleRange(1, 31)],
    )
    run = PayoutRunInput(
        cadence,
        concurrency=settings.payout_concurrency,
        page_size=settings.payout_page_size,
        hold_seconds=int(settings.payout_hold.total_seconds()),
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PayoutRunWorkflow.run,
            run,
            id=f"payout-run:{cadence}",  # Temporal appends the scheduled time
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name="UTC"),
        # One run of a cadence at a time; a missed run within a day is still made.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


def reconciliation_schedule(settings: Settings) -> Schedule:
    interval = settings.reconciliation_interval
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            ReconciliationInput(interval_seconds=int(interval.total_seconds())),
            id="reconciliation",  # Temporal appends the scheduled time
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=interval),
    )


def recovery_schedule(settings: Settings) -> Schedule:
    """Daily, an hour before the payouts: deficits that have lasted are taken back first."""
    run = RecoveryRunInput(
        int(settings.negative_balance_recovery_after.total_seconds()), page_size=settings.payout_page_size
    )
    calendar = ScheduleCalendarSpec(
        hour=[ScheduleRange((settings.payout_hour - 1) % 24)],
        minute=[ScheduleRange(settings.payout_minute)],
        second=[ScheduleRange(0)],
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RecoveryRunWorkflow.run,
            run,
            id="recovery-run",  # Temporal appends the scheduled time
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


def stripe_balance_schedule(settings: Settings) -> Schedule:
    """Daily, half an hour after the payouts: the platform's balance at Stripe against the ledger."""
    calendar = ScheduleCalendarSpec(
        hour=[ScheduleRange(settings.payout_hour)],
        minute=[ScheduleRange((settings.payout_minute + 30) % 60)],
        second=[ScheduleRange(0)],
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            StripeBalanceWorkflow.run,
            id="stripe-balance",  # Temporal appends the scheduled time
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    wanted_schedules = {
        schedule_id: payout_schedule(settings, cadence) for cadence, schedule_id in PAYOUT_SCHEDULES.items()
    }
    wanted_schedules[RECONCILIATION_SCHEDULE] = reconciliation_schedule(settings)
    wanted_schedules[RECOVERY_SCHEDULE] = recovery_schedule(settings)
    wanted_schedules[STRIPE_BALANCE_SCHEDULE] = stripe_balance_schedule(settings)
    for schedule_id, wanted in wanted_schedules.items():
        try:
            await client.create_schedule(schedule_id, wanted)
        except ScheduleAlreadyRunningError:

            def update(current: ScheduleUpdateInput, wanted: Schedule = wanted) -> ScheduleUpdate:
                # Keep an operator's pause: only the action, spec and policy follow the settings.
                wanted.state = current.description.schedule.state
                return ScheduleUpdate(schedule=wanted)

            await client.get_schedule_handle(schedule_id).update(update)


class SchedulesWatch:
    """Temporal lost its database (a dev server started on a new file, a cluster restored empty):
    the Schedules and every workflow went with it. Every PAYMENTS_SCHEDULES_WATCH_INTERVAL (10 s)
    the worker looks for the reconciliation Schedule; when it is missing, it creates the Schedules
    again and, once no call made before the loss can still be running
    (PAYMENTS_RECONCILIATION_GONE_AFTER), triggers a reconciliation run, which settles every
    payment, refund and payout whose workflow was lost
    (payments/activities/reconciliation_gone.py)."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._interval_seconds = settings.schedules_watch_interval.total_seconds()
        self._reconcile_at: float | None = None  # monotonic time of the catch-up run, once Temporal came back empty

    async def check(self) -> int:
        """0: there is never a backlog to hurry through."""
        schedule = self._client.get_schedule_handle(RECONCILIATION_SCHEDULE)
        if self._reconcile_at is not None and time.monotonic() >= self._reconcile_at:
            await schedule.trigger()
            self._reconcile_at = None
            log.warning("temporal_lost_reconciliation_triggered")
            return 0
        try:
            await schedule.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            await ensure_schedules(self._client, self._settings)
            wait = self._settings.reconciliation_gone_after.total_seconds()
            self._reconcile_at = time.monotonic() + wait
            log.warning("temporal_lost_schedules_created", reconcile_in_seconds=wait)
        return 0

    async def run(self, stop: asyncio.Event) -> None:
        await poll_until_stopped(self.check, stop, self._interval_seconds, (RPCError,), "schedules_watch")
