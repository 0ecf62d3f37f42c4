"""Rows whose workflow Temporal no longer has: its database was lost (the dev server's file
deleted, a cluster restored empty) or the workflow was terminated. Nothing will finish such a row,
so reconciliation does, at once rather than after `stuck_after`. A refund or a payout is driven
again by starting its own workflow anew on the same id: its reserve step finds the row, and
Stripe's idempotency key (the refund or payout id) makes the Stripe call happen once whoever made
it first. A payment is settled as Stripe has it (reconciliation_payments.PaymentChecks.settle_stuck):
a capture Stripe made is recorded, an authorization no workflow can capture any more is voided
(the customer pays again), one never made is failed.

Activities do not start workflows: the worker gives the reconciler a `LostWorkflows` that asks
Temporal and starts them (payments/workers/lost_workflows.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from temporalio.client import WorkflowExecutionStatus

from payments.schema.tables import Payout, Refund


class LostWorkflows(Protocol):
    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """The workflow's status; None when Temporal has no such workflow."""

    async def gone(self, workflow_id: str, updated_at: datetime) -> bool:
        """Nothing will write the row (last written at `updated_at`) again: Temporal has no
        workflow under its id, or only one that ended and began after that write (a client's retry
        started a new run, which found the row and left it: the run that wrote it was lost). False
        for a row written too recently: a Stripe call made before a loss may still be on its way."""

    async def refund_gone(self, refund: Refund) -> bool:
        """`gone`, for the refund's workflow."""

    async def payout_gone(self, payout: Payout) -> bool:
        """`gone`, for the payout's workflow."""

    async def restart_refund(self, refund: Refund) -> None:
        """Start the refund's workflow again on its id, from its row."""

    async def restart_payout(self, payout: Payout) -> None:
        """Start the payout's workflow again on its id, from its row."""
