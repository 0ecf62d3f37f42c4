"""The Temporal Schedules the worker keeps in place: `payouts-daily`, `payouts-monthly`,
`reconciliation`, `negative-balance-recovery` and `stripe-balance`.
Created or updated at every worker start, so changing a setting and restarting is enough."""

from __future__ import annotations

from datetime import timedelta

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

from payments.config.settings import Settings
from payments.schema.messages import PayoutRunInput, ReconciliationInput, RecoveryRunInput
from payments.workflows.payout import PayoutRunWorkflow
from payments.workflows.reconciliation import ReconciliationWorkflow
from payments.workflows.recovery import RecoveryRunWorkflow
from payments.workflows.stripe_balance import StripeBalanceWorkflow

PAYOUT_SCHEDULES = {"daily": "payouts-daily", "monthly": "payouts-monthly"}
RECONCILIATION_SCHEDULE = "reconciliation"
RECOVERY_SCHEDULE = "negative-balance-recovery"
STRIPE_BALANCE_SCHEDULE = "stripe-balance"


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
