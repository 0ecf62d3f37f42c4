"""Replay recorded histories against today's workflow code: a non-deterministic change fails here
before it can break workflows that are already running in production."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from payments.workers.registry import sandboxed_workflow_runner, workflow_runner, workflows

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert {
        "payment_captured",
        "payment_declined",
        "payment_canceled",
        "payment_expired",
        "payment_authenticated",
        "payout_paid",
        "payout_refused_by_stripe",
        "payout_run",
        "payment_captured_stripe_local",
        "payment_declined_stripe_local",
        "payment_canceled_stripe_local",
        "payment_expired_stripe_local",
        "payment_authenticated_stripe_local",
        "payout_run_stripe_local",
        "dispute_won_after_evidence",
        "dispute_evidence_kept_until_deadline",
        "dispute_accepted",
        "dispute_deadline_passed",
        "dispute_won_funds_from_stripe",
        "dispute_withdrawn_later",
        "recovery_reversed_and_refused",
        "recovery_run",
        "refund_succeeded",
        "refund_pending_at_stripe",
        "refund_settlement_read_back",
        "refund_settlement_failed_after_success",
        "webhook_delivered_after_retries",
        "webhook_failed_after_window",
        "webhook_retried_by_signal",
        "reconciliation_scheduled",
        "reconciliation_from_watermark",
        "reconciliation_slices_apart",
        "payment_another_card_captured",
        "payment_another_card_given_up",
        "payment_another_card_expired",
        "stripe_balance_unexplained",
    } <= {p.stem for p in HISTORIES}


RUNNERS = {"sandboxed": sandboxed_workflow_runner, "worker": workflow_runner}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays_deterministically(path: Path, runner: str) -> None:
    """In the sandbox (which refuses I/O, clocks and randomness in workflow code) and as the worker
    runs workflows, outside it."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=workflows(), workflow_runner=RUNNERS[runner]()).replay_workflow(history)
