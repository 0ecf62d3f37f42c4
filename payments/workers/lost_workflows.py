"""The reconciler's `LostWorkflows` (payments/activities/reconciliation_gone.py) on Temporal:
describes a row's workflow, and starts a refund's or a payout's workflow again on its own id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from payments.config.settings import Settings
from payments.schema.messages import PayoutRequest, RefundRequest
from payments.schema.tables import Payout, Refund
from payments.workflows import payout as payout_workflow
from payments.workflows import refund as refund_workflow
from payments.workflows import search_attributes as sa


class TemporalLostWorkflows:
    def __init__(self, temporal: Client, settings: Settings) -> None:
        self._temporal = temporal
        self._task_queue = settings.temporal_task_queue
        self._gone_after = settings.reconciliation_gone_after
        self._refund_read_back = int(settings.refund_read_back_interval.total_seconds())
        self._payout_hold = int(settings.payout_hold.total_seconds())

    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        described = await self._describe(workflow_id)
        return described.status if described else None

    async def gone(self, workflow_id: str, updated_at: datetime) -> bool:
        if updated_at > datetime.now(UTC) - self._gone_after:
            return False
        described = await self._describe(workflow_id)
        if described is None:
            return True
        return described.status != WorkflowExecutionStatus.RUNNING and described.start_time > updated_at

    async def _describe(self, workflow_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await self._temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return None

    async def refund_gone(self, refund: Refund) -> bool:
        return await self.gone(refund_workflow.workflow_id(refund.tx_id, refund.idempotency_key), refund.updated_at)

    async def payout_gone(self, payout: Payout) -> bool:
        workflow_id = payout_workflow.workflow_id(payout.merchant_id, payout.idempotency_key)
        return await self.gone(workflow_id, payout.updated_at)

    async def restart_refund(self, refund: Refund) -> None:
        request = RefundRequest(
            refund.id, refund.tx_id, refund.amount, refund.reason, refund.idempotency_key, self._refund_read_back
        )
        await self._start(
            refund_workflow.RefundWorkflow.run,
            request,
            refund_workflow.workflow_id(refund.tx_id, refund.idempotency_key),
            SearchAttributePair(sa.TX_ID, refund.tx_id),
        )

    async def restart_payout(self, payout: Payout) -> None:
        request = PayoutRequest(
            payout.merchant_id,
            payout.idempotency_key,
            payout.period,
            payout.amount,
            payout.currency,
            self._payout_hold,
            payout.request_fingerprint,
        )
        await self._start(
            payout_workflow.MerchantPayoutWorkflow.run,
            request,
            payout_workflow.workflow_id(payout.merchant_id, payout.idempotency_key),
            SearchAttributePair(sa.MERCHANT_ID, payout.merchant_id),
        )

    async def _start(self, run: Any, request: object, workflow_id: str, attribute: SearchAttributePair[str]) -> None:
        await self._temporal.start_workflow(
            run,
            request,
            id=workflow_id,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_queue=self._task_queue,
            search_attributes=TypedSearchAttributes([attribute]),
        )
