"""The Temporal Schedules the worker keeps in place: `payouts-daily` and `payouts-monthly`.
Created or updated at every worker start, so changing a setting and restarting is enough."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config.settings import Settings
from schema.messages import PayoutRunInput
from workflows.payout import PayoutRunWorkflow

PAYOUT_SCHEDULES = {"daily": "payouts-daily", "monthly": "payouts-monthly"}


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


async def ensure_schedules(client: Client, settings: Settings) -> None:
    for cadence, schedule_id in PAYOUT_SCHEDULES.items():
        wanted = payout_schedule(settings, cadence)
        try:
            await client.create_schedule(schedule_id, wanted)
        except ScheduleAlreadyRunningError:

            def update(current: ScheduleUpdateInput, wanted: Schedule = wanted) -> ScheduleUpdate:
                # Keep an operator's pause: only the action, spec and policy follow the settings.
                wanted.state = current.description.schedule.state
                return ScheduleUpdate(schedule=wanted)

            await client.get_schedule_handle(schedule_id).update(update)
