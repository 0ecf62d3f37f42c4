"""DisputeWorkflow's orchestration on the time-skipping server (the 7-day evidence deadline and
the read-back interval pass at once), Stripe and the database stubbed by activity name."""

import dataclasses
import time
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from payments.schema.messages import (
    DisputeEvidence,
    DisputeFunds,
    DisputeRecord,
    DisputeRequest,
    DisputeStatusChange,
    DisputeView,
    EvidenceSubmission,
    StripeDispute,
    StripeDisputeEvent,
)
from payments.workflows.dispute import DisputeWorkflow, workflow_id
from tests.services import eventually, fresh_key

WEEK = 7 * 86_400
READ_BACK = 6 * 3600
STRIPE_FEE = 1500
WITHDRAWAL = DisputeFunds("txn_1", -2000, STRIPE_FEE, -2000 - STRIPE_FEE)


class FakeDispute:
    """One dispute at a fake Stripe and its row in a fake database; every call recorded. The bank
    decides `outcome` once evidence is under review (seen only by reading the dispute back)."""

    def __init__(self, outcome: str = "won", withdrawn: bool = True) -> None:
        self.stripe = StripeDispute(
            "dp_1", "pi_1", 2000, "usd", "fraudulent", "needs_response", int(time.time()) + WEEK,
            WITHDRAWAL if withdrawn else None,
        )  # fmt: skip
        self.row: DisputeView | None = None
        self.outcome = outcome
        self.calls: list[str] = []

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="read_dispute")
        async def read_dispute(_: str) -> StripeDispute:
            fake.calls.append("read")
            if fake.stripe.status == "under_review":
                fake.stripe = dataclasses.replace(fake.stripe, status=fake.outcome)
            return fake.stripe

        @activity.defn(name="send_evidence")
        async def send_evidence(evidence: EvidenceSubmission) -> StripeDispute:
            fake.calls.append(f"evidence:{evidence.text}:{'submit' if evidence.submit else 'keep'}")
            if evidence.submit:
                fake.stripe = dataclasses.replace(fake.stripe, status="under_review")
            return fake.stripe

        @activity.defn(name="accept_dispute")
        async def accept_dispute(_: str) -> StripeDispute:
            fake.calls.append("accept")
            fake.stripe = dataclasses.replace(fake.stripe, status="lost")
            return fake.stripe

        @activity.defn(name="record_dispute")
        async def record_dispute(record: DisputeRecord) -> DisputeView:
            fake.calls.append("record")
            d = record.dispute
            fake.row = fake.row or DisputeView(
                "dsp_1", d.stripe_dispute_id, "tx_1", "mer_1", d.amount, record.fee, d.currency, d.reason, d.status,
                d.evidence_due_by,
            )  # fmt: skip
            if record.funds_from_stripe:
                fake.row = _funds(fake.row, d)
            return fake.row

        @activity.defn(name="record_dispute_status")
        async def record_dispute_status(change: DisputeStatusChange) -> DisputeView:
            fake.calls.append(f"status:{change.status}")
            assert fake.row is not None
            text = change.evidence_text or fake.row.evidence_text
            fake.row = dataclasses.replace(fake.row, status=change.status, evidence_text=text)
            if change.stripe is not None:
                fake.row = _funds(fake.row, change.stripe)
            return fake.row

        return [read_dispute, send_evidence, accept_dispute, record_dispute, record_dispute_status]


def _funds(row: DisputeView, stripe: StripeDispute) -> DisputeView:
    """What the database records of the money Stripe's dispute shows it moved."""
    fee = stripe.withdrawal.fee if stripe.withdrawal else 0
    return dataclasses.replace(
        row, fee=fee, withdrawn=stripe.withdrawal is not None, reinstated=stripe.reinstatement is not None
    )


async def start(env: WorkflowEnvironment, fake: FakeDispute) -> tuple[Worker, Any]:
    task_queue = f"disputes-{fresh_key()}"
    worker = Worker(env.client, task_queue=task_queue, workflows=[DisputeWorkflow], activities=fake.activities())
    await worker.__aenter__()
    handle = await env.client.start_workflow(
        DisputeWorkflow.run,
        DisputeRequest("dp_1", 0, READ_BACK),  # no fee of ours: Stripe's balance transaction has it
        id=workflow_id(f"dp_{fresh_key()}"),
        task_queue=task_queue,
    )
    return worker, handle


async def test_no_evidence_by_the_deadline_accepts_the_dispute(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeDispute()
    worker, handle = await start(time_skipping_env, fake)
    try:
        view: DisputeView = await handle.result()
    finally:
        await worker.__aexit__(None, None, None)
    assert view.status == "lost" and (view.fee, view.withdrawn) == (STRIPE_FEE, True)
    assert fake.calls == ["read", "record", "accept", "status:lost"]


async def test_evidence_kept_is_submitted_at_the_deadline_and_a_read_back_finds_the_outcome(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake = FakeDispute(outcome="won")
    worker, handle = await start(time_skipping_env, fake)
    try:
        kept: DisputeView = await handle.execute_update(
            DisputeWorkflow.submit_evidence, DisputeEvidence("Tracking 1Z999", submit=False)
        )
        assert (kept.status, kept.evidence_text) == ("needs_response", "Tracking 1Z999")
        view: DisputeView = await handle.result()  # no webhook: the deadline, then the read-back
    finally:
        await worker.__aexit__(None, None, None)
    assert view.status == "won"
    assert fake.calls == [
        "read",
        "record",
        "evidence:Tracking 1Z999:keep",
        "status:needs_response",
        "evidence:Tracking 1Z999:submit",
        "status:under_review",
        "read",
        "status:won",
    ]


async def test_submitted_evidence_then_the_outcome_webhook(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeDispute(outcome="lost")
    worker, handle = await start(time_skipping_env, fake)
    try:
        submitted: DisputeView = await handle.execute_update(
            DisputeWorkflow.submit_evidence, DisputeEvidence("Signed receipt", submit=True)
        )
        assert submitted.status == "under_review"
        await handle.signal(DisputeWorkflow.stripe_event, StripeDisputeEvent("evt_1", "charge.dispute.closed", "dp_1"))
        view: DisputeView = await handle.result()
        late = await handle.query(DisputeWorkflow.status)
    finally:
        await worker.__aexit__(None, None, None)
    assert view.status == "lost" and late is not None and late.status == "lost"
    assert fake.calls.count("read") == 2 and "accept" not in fake.calls


async def test_the_withdrawal_is_recorded_when_a_funds_withdrawn_webhook_has_it_read_back(
    own_time_skipping_env: WorkflowEnvironment,
) -> None:
    """On a server of its own: on the shared one, time had skipped past the deadline before the
    signal came (seen here)."""
    fake = FakeDispute(withdrawn=False)  # an inquiry, or a chargeback whose money Stripe has not taken yet
    worker, handle = await start(own_time_skipping_env, fake)
    try:
        opened = await eventually(
            lambda: handle.query(DisputeWorkflow.status), lambda v: v is not None, "the dispute recorded"
        )
        assert (opened.fee, opened.withdrawn) == (0, False)
        fake.stripe = dataclasses.replace(fake.stripe, withdrawal=WITHDRAWAL)
        event = StripeDisputeEvent("evt_2", "charge.dispute.funds_withdrawn", "dp_1")
        await handle.signal(DisputeWorkflow.stripe_event, event)
        withdrawn = await eventually(
            lambda: handle.query(DisputeWorkflow.status), lambda v: v is not None and v.withdrawn, "the withdrawal"
        )
        assert (withdrawn.status, withdrawn.fee) == ("needs_response", STRIPE_FEE)
        await handle.execute_update(DisputeWorkflow.accept)
        await handle.result()
    finally:
        await worker.__aexit__(None, None, None)
    assert fake.calls[:4] == ["read", "record", "read", "status:needs_response"]


async def test_a_reinstatement_stripe_shows_is_recorded_with_the_outcome(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake = FakeDispute(outcome="won")
    fake.stripe = dataclasses.replace(fake.stripe, reinstatement=DisputeFunds("txn_2", 2000, 0, 2000))
    worker, handle = await start(time_skipping_env, fake)
    try:
        await handle.execute_update(DisputeWorkflow.submit_evidence, DisputeEvidence("Signed receipt", submit=True))
        view: DisputeView = await handle.result()  # the read-back finds it won, the money given back
    finally:
        await worker.__aexit__(None, None, None)
    assert (view.status, view.withdrawn, view.reinstated) == ("won", True, True)
