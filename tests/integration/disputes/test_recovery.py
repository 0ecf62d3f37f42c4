"""Negative-balance recovery on the real stack: a refund after the money was paid out leaves a
deficit; once it has lasted, the merchant's latest transfer is reversed at Stripe by exactly the
deficit, once, even with the worker killed while Stripe is answering."""

from pathlib import Path

import pytest
import stripe
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.config.settings import Settings
from payments.schema.messages import PlannedReversal, RecoveryRequest
from payments.schema.tables import TransferReversal
from payments.workflows.recovery import BalanceRecoveryWorkflow, workflow_id
from tests.integration.conftest import Parties, after_worker_replaced, worker_process
from tests.integration.payouts.test_payouts import (
    balance,
    ledger_sums_to_zero,
    merchant_with_sales,
    net,
    wait_for_payout,
)
from tests.services import eventually, fresh_key


async def paid_out(seller: Parties) -> str:
    asked = await seller.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert asked.status_code == 202, asked.text
    return str((await wait_for_payout(seller, asked.json()["id"], "paid"))["id"])


async def reversals_of(engine: AsyncEngine, merchant_id: str) -> list[TransferReversal]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(TransferReversal).where(TransferReversal.merchant_id == merchant_id))
        return list(rows.all())  # type: ignore[arg-type]


def stripe_reversals(settings: Settings, transfer_id: str) -> list[stripe.TransferReversal]:
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})
    return list(client.v1.transfers.reversals.list(transfer_id, params={"limit": 100}).data)


async def transfer_of(engine: AsyncEngine, payout_id: str) -> str:
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT stripe_transfer_id FROM payouts WHERE id = :p"), {"p": payout_id})
        return str(found.scalar_one())


@pytest.mark.timeout(300)  # two payouts, a worker process started, killed and replaced
async def test_a_lasting_deficit_is_reversed_from_the_latest_transfer_once_with_the_worker_killed(
    parties: Parties,
    stack_settings: Settings,
    temporal_client: Client,
    emulator_control,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    seller = await merchant_with_sales(parties, "monthly")
    first_sale = await seller.captured(1000)
    first_payout = await paid_out(seller)
    await seller.captured(2000)
    latest_payout = await paid_out(seller)
    assert (await seller.refund(first_sale["id"])).status_code == 201
    assert (await balance(seller))["available"] == -net(1000)

    fresh = RecoveryRequest(seller.merchant_id, f"fresh-{fresh_key()}", 7 * 86_400)
    assert (
        await temporal_client.execute_workflow(
            BalanceRecoveryWorkflow.run, fresh, id=fresh.recovery_id, task_queue=stack_settings.temporal_task_queue
        )
        == []
    )  # a deficit younger than the setting's 7 days is left to later captures

    settings = stack_settings.model_copy(update={"temporal_task_queue": f"recovery-chaos-{fresh_key()}"})
    slow = {"path": "/v1/transfers/[^/]+/reversals", "action": "latency", "latency_ms": 3000, "times": 5}
    fault = emulator_control("POST", "/faults", json=slow).json()
    request = RecoveryRequest(seller.merchant_id, workflow_id(seller.merchant_id, fresh_key()[:8]), 0)
    first = worker_process(settings, tmp_path / "worker.log")
    try:
        handle = await temporal_client.start_workflow(
            BalanceRecoveryWorkflow.run, request, id=request.recovery_id, task_queue=settings.temporal_task_queue
        )
        await eventually(lambda: reversals_of(engine, seller.merchant_id), bool, "the reversal planned", 90)
        reversed_: list[PlannedReversal] = await after_worker_replaced(
            first, settings, tmp_path / "worker.log", handle.result(), 120
        )
    finally:
        if first.poll() is None:
            first.kill()
        emulator_control("DELETE", f"/faults/{fault['id']}")

    assert [(r.payout_id, r.amount, r.status) for r in reversed_] == [(latest_payout, net(1000), "reversed")]
    made = stripe_reversals(stack_settings, await transfer_of(engine, latest_payout))
    assert [r.amount for r in made] == [net(1000)]  # exactly the deficit, once
    assert stripe_reversals(stack_settings, await transfer_of(engine, first_payout)) == []
    assert (await balance(seller))["available"] == 0
    async with engine.connect() as conn:
        postings = await conn.execute(
            text("SELECT count(*) FROM ledger_transactions WHERE reference = :r"),
            {"r": f"reversal:{reversed_[0].reversal_id}"},
        )
        assert postings.scalar_one() == 1
    assert await ledger_sums_to_zero(engine)

    again = await temporal_client.execute_workflow(
        BalanceRecoveryWorkflow.run,
        request,
        id=f"{request.recovery_id}:again",
        task_queue=stack_settings.temporal_task_queue,
    )
    assert again == reversed_  # the same recovery: planned once, reversed once
    assert len(stripe_reversals(stack_settings, await transfer_of(engine, latest_payout))) == 1
