"""Reading a failure: an activity's in workflow code (is it final, what did it say), and an update's
in the API (what the workflow said)."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ActivityError, ApplicationError


def final_failure(error: ActivityError | ApplicationError) -> ApplicationError | None:
    """The non-retryable failure behind an activity error, or None if it was transient. A local
    activity's failure reaches the workflow as the ApplicationError itself, a regular activity's
    wrapped in an ActivityError."""
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause if isinstance(cause, ApplicationError) and cause.non_retryable else None


def failure_details(failure: ApplicationError) -> dict[str, Any]:
    """The dict an activity or an update attached to its failure (Stripe's code, the available
    balance, the payment's status...)."""
    return dict(failure.details[0] or {}) if failure.details else {}
