"""How a payment's or payout's Stripe call runs: its first attempt inside the workflow task that
needs it (a local activity: no activity task, no completion, no second workflow task), and only a
transient failure's retries as an activity task, where the Temporal UI shows the pending call, its
attempts and Stripe's last error with its request id.

Either way the call is at-least-once, safe because every call carries an idempotency key. A worker
killed inside the first attempt is noticed when its workflow task times out (3 s) and the task runs
again on another worker; inside a retry, by the activity's heartbeat timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from payments.workflows.failures import final_failure
from payments.workflows.policies import STRIPE_FIRST_ATTEMPT, STRIPE_STEP

A = TypeVar("A")
R = TypeVar("R")

# The patch that moved first attempts into the workflow task: a payment or payout started before it
# replays its recorded activity tasks, and keeps scheduling activity tasks until it ends.
FIRST_ATTEMPT_IN_WORKFLOW_TASK = "stripe-local-activities"


async def stripe_step(activity: Callable[[Any, A], Awaitable[R]], arg: A, *, in_workflow_task: bool = True) -> R:
    """Run a Stripe activity; `in_workflow_task=False` keeps every attempt an activity task (for a
    workflow whose caller waits on an update that must answer before Stripe is called)."""
    if in_workflow_task and workflow.patched(FIRST_ATTEMPT_IN_WORKFLOW_TASK):
        try:
            return await workflow.execute_local_activity_method(activity, arg, **STRIPE_FIRST_ATTEMPT)
        except (ActivityError, ApplicationError) as error:
            if final_failure(error) is not None:
                raise  # Stripe's final answer (a decline, a refusal): the caller acts on it
    return await workflow.execute_activity_method(activity, arg, **STRIPE_STEP)
