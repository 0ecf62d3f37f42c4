"""Payouts on the real stack: scheduled runs, on-demand payouts, Stripe refusals and faults, a
worker killed mid-run, and a refund after a payout. Invariant throughout: one transfer per
payout, the ledger balances, and a payout never takes a payable below zero (a refund may)."""

import asyncio
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleOverlapPolicy
from temporalio.worker import Worker

from payments.config.settings import Settings
from payments.schema.messages import PayoutRunInput, PayoutRunSummary
from payments.schema.tables import Payout
from payments.workers.schedules import PAYOUT_SCHEDULES, ensure_schedules
from payments.workflows.payout import PayoutRunWorkflow
from tests.integration.conftest import Parties, after_worker_replaced, open_merchant, worker_process
from tests.services import eventually, fresh_key

FEE_BPS = 250  # the parties fixture's merchants


async def merchant_with_sales(parties: Parties, schedule: str, *sales: int) -> Parties:
    """A new merchant on `schedule` (same payer) with each of `sales` captured."""
    body = {"name": "Shop", "currency": "usd", "fee_bps": FEE_BPS, "payout_schedule": schedule}
    created = await open_merchant(parties.api, parties.auth("operator"), body)
    seller = Parties(parties.api, parties.auth, parties.user_id, created["id"], FEE_BPS)
    for amount in sales:
        await seller.captured(amount)
    return seller


def net(amount: int) -> int:
    return amount - amount * FEE_BPS // 10_000


async def payouts_of(engine: AsyncEngine, merchant_id: str) -> list[Payout]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Payout).where(Payout.merchant_id == merchant_id))).all())  # type: ignore[arg-type]


async def paid_count(engine: AsyncEngine, merchant_ids: list[str]) -> int:
    async with engine.connect() as conn:
        paid = await conn.execute(
            select(func.count()).where(Payout.merchant_id.in_(merchant_ids), Payout.status == "paid")
        )
        return int(paid.scalar_one())


def transfers_to(settings: Settings, account: str) -> list[stripe.Transfer]:
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": settings.stripe_api_base})
    return list(client.v1.transfers.list(params={"destination": account, "limit": 100}).auto_paging_iter())


async def account_of(parties: Parties) -> str:
    merchant = await parties.api.get(f"/merchants/{parties.merchant_id}", headers=parties.auth("operator"))
    return str(merchant.json()["payout_account"])


async def run_payouts(client: Client, settings: Settings, schedule: str, period: str) -> PayoutRunSummary:
    """A run pays every merchant on `schedule` in the session's database, earlier tests' too, and
    earlier tests left merchants in deficit (refunds and disputes after a payout) that the
    platform's Stripe balance covered: which tests ran before depends on how the suite was split
    between processes. The balance is topped up first, as an operator would, so that a transfer
    is never refused for it (a refused transfer is tested on its own)."""
    topup = {"amount": 100_000_000, "currency": "usd"}
    async with httpx.AsyncClient(timeout=10) as stripe_control:
        topped = await stripe_control.post(f"{settings.stripe_api_base}/_emulator/seed/topup", json=topup)
    topped.raise_for_status()
    run = PayoutRunInput(schedule, concurrency=3, page_size=2, hold_seconds=0, period=period)  # 2: several pages
    return await client.execute_workflow(
        PayoutRunWorkflow.run,
        run,
        id=f"payout-run-test:{fresh_key()}",
        task_queue=settings.temporal_task_queue,
    )


async def balance(parties: Parties) -> dict[str, Any]:
    response = await parties.api.get(f"/merchants/{parties.merchant_id}/balance", headers=parties.as_merchant)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger_sums_to_zero(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        sums = await conn.execute(text("SELECT currency, sum(amount) FROM ledger_entries GROUP BY currency"))
        return all(total == 0 for _, total in sums)


async def wait_for_payout(parties: Parties, payout_id: str, status: str) -> dict[str, Any]:
    async def payout() -> dict[str, Any]:
        listed = await parties.api.get(f"/merchants/{parties.merchant_id}/payouts", headers=parties.as_merchant)
        return dict(next(p for p in listed.json()["data"] if p["id"] == payout_id))

    return await eventually(payout, lambda p: p["status"] == status, f"{payout_id} to become {status}")


async def test_a_daily_run_pays_each_net_balance_once_and_a_rerun_pays_nothing_new(
    parties: Parties, temporal_client: Client, stack_settings: Settings, engine: AsyncEngine
) -> None:
    first = await merchant_with_sales(parties, "daily", 1000, 2000)
    refund = await first.refund((await first.captured(400))["id"])
    assert refund.status_code == 201, refund.text  # a full refund: the merchant nets nothing from it
    second = await merchant_with_sales(parties, "daily", 3000)
    monthly = await merchant_with_sales(parties, "monthly", 1000)
    period = f"test-{fresh_key()[:8]}"

    summary = await run_payouts(temporal_client, stack_settings, "daily", period)

    first_payouts, second_payouts = (
        await payouts_of(engine, first.merchant_id),
        await payouts_of(engine, second.merchant_id),
    )
    assert [(p.amount, p.status, p.period) for p in first_payouts] == [(net(1000) + net(2000), "paid", period)]
    assert [(p.amount, p.status) for p in second_payouts] == [(net(3000), "paid")]
    assert await payouts_of(engine, monthly.merchant_id) == []
    assert [t.amount for t in transfers_to(stack_settings, await account_of(first))] == [net(1000) + net(2000)]
    assert (await balance(first))["available"] == 0 and (await balance(first))["paid"] == net(1000) + net(2000)
    async with engine.connect() as conn:
        paid_in_run = await conn.execute(select(Payout.amount).where(Payout.period == period, Payout.status == "paid"))
        amounts = [a for (a,) in paid_in_run]
    assert summary.paid == len(amounts) and summary.totals == {"usd": sum(amounts)}  # across pages

    await first.captured(500)  # new money after the run: the same period must not pay it
    rerun = await run_payouts(temporal_client, stack_settings, "daily", period)
    assert rerun.paid == 0 and rerun.already_paid >= 1
    assert len(await payouts_of(engine, first.merchant_id)) == 1
    assert len(transfers_to(stack_settings, await account_of(first))) == 1
    assert (await balance(first))["available"] == net(500)

    monthly_run = await run_payouts(temporal_client, stack_settings, "monthly", period)
    assert monthly_run.paid >= 1
    assert [p.amount for p in await payouts_of(engine, monthly.merchant_id)] == [net(1000)]
    assert await ledger_sums_to_zero(engine)


async def test_schedules_exist_pausable_and_never_overlap(
    worker: Worker, temporal_client: Client, stack_settings: Settings
) -> None:
    await ensure_schedules(temporal_client, stack_settings)
    daily = temporal_client.get_schedule_handle(PAYOUT_SCHEDULES["daily"])
    await daily.pause(note="operator pause")
    await ensure_schedules(temporal_client, stack_settings)  # a worker restart keeps the pause
    described = await daily.describe()
    assert described.schedule.state.paused
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    calendar = described.schedule.spec.calendars[0]
    assert calendar.hour[0].start == stack_settings.payout_hour
    monthly = await temporal_client.get_schedule_handle(PAYOUT_SCHEDULES["monthly"]).describe()
    assert monthly.schedule.spec.calendars[0].day_of_month[0].start == stack_settings.payout_month_day
    await daily.unpause()

    await daily.trigger()  # what an operator's "Trigger" in the UI does
    described = await eventually(daily.describe, lambda d: bool(d.info.recent_actions), "the schedule to start a run")
    action = described.info.recent_actions[-1]
    assert isinstance(action.action, ScheduleActionExecutionStartWorkflow)
    run = temporal_client.get_workflow_handle(action.action.workflow_id, result_type=PayoutRunSummary)
    summary = await run.result()
    assert summary.period == action.scheduled_at.astimezone(UTC).strftime("%Y-%m-%d")  # not today's: midnight


async def test_on_demand_payout_of_part_then_more_than_is_available(parties: Parties, engine: AsyncEngine) -> None:
    seller = await merchant_with_sales(parties, "monthly", 5000)
    asked = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "amount": 1000, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "in_transit" and asked.json()["amount"] == 1000
    await wait_for_payout(seller, asked.json()["id"], "paid")
    too_much = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "amount": 10_000, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert too_much.status_code == 409 and too_much.json()["error"]["available"] == net(5000) - 1000
    other = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=parties.as_merchant,
    )
    assert other.status_code == 404  # another merchant's balance
    assert (await balance(seller)) | {"merchant_id": ""} == {
        "merchant_id": "",
        "currency": "usd",
        "available": net(5000) - 1000,
        "in_transit": 0,
        "paid": 1000,
        "disputed": 0,
    }


async def test_a_repeated_on_demand_request_is_one_payout(parties: Parties, engine: AsyncEngine) -> None:
    seller = await merchant_with_sales(parties, "monthly", 2000)
    body = {"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()}
    answers = await asyncio.gather(
        *(parties.api.post("/payouts/schedule", json=body, headers=seller.as_merchant) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    await wait_for_payout(seller, answers[0].json()["id"], "paid")
    assert [p.amount for p in await payouts_of(engine, seller.merchant_id)] == [net(2000)]


async def test_an_on_demand_payout_without_a_key_is_refused_and_starts_nothing(
    parties: Parties, engine: AsyncEngine, temporal_client: Client
) -> None:
    seller = await merchant_with_sales(parties, "monthly", 2000)
    keyless = await parties.api.post(
        "/payouts/schedule", json={"merchant_id": seller.merchant_id, "amount": 500}, headers=seller.as_merchant
    )
    assert keyless.status_code == 400, keyless.text
    assert keyless.json()["error"]["code"] == "idempotency_key_required"
    assert await payouts_of(engine, seller.merchant_id) == []

    keyed = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "amount": 500},
        headers=seller.as_merchant | {"Idempotency-Key": fresh_key()},
    )
    assert keyed.status_code == 202, keyed.text
    # Visibility lags: once the keyed payout's workflow shows, a keyless one would show beside it.
    query = f"WorkflowType = 'MerchantPayoutWorkflow' AND MerchantId = '{seller.merchant_id}'"

    async def started() -> list[str]:
        return [w.id async for w in temporal_client.list_workflows(query)]

    assert len(await eventually(started, bool, "the keyed payout's workflow in visibility")) == 1


async def test_a_key_in_the_header_repeats_one_payout_and_refuses_other_parameters(
    parties: Parties, stack_settings: Settings
) -> None:
    seller = await merchant_with_sales(parties, "monthly", 3000)
    body, headers = {"merchant_id": seller.merchant_id, "amount": 700}, seller.as_merchant | {"Idempotency-Key": "po-1"}
    first = await parties.api.post("/payouts/schedule", json=body, headers=headers)
    await wait_for_payout(seller, first.json()["id"], "paid")
    retried = await parties.api.post("/payouts/schedule", json=body, headers=headers)
    assert (first.status_code, retried.status_code) == (202, 202), retried.text
    assert retried.json()["id"] == first.json()["id"] and retried.json()["status"] == "paid"
    assert [t.amount for t in transfers_to(stack_settings, await account_of(seller))] == [700]

    other = await parties.api.post("/payouts/schedule", json=body | {"amount": 800}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused", other.text
    everything = await parties.api.post("/payouts/schedule", json={"merchant_id": seller.merchant_id}, headers=headers)
    assert everything.status_code == 422, everything.text  # "all available" is another request too


async def test_a_transfer_stripe_refuses_restores_the_balance(
    parties: Parties, emulator_control, engine: AsyncEngine
) -> None:
    seller = await merchant_with_sales(parties, "monthly", 3000)
    assert emulator_control("DELETE", f"/objects/{await account_of(seller)}").is_success  # gone at Stripe
    asked = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert asked.status_code == 202, asked.text
    failed = await wait_for_payout(seller, asked.json()["id"], "failed")
    assert failed["failure_code"] == "resource_missing"
    assert (await balance(seller))["available"] == net(3000)
    assert await ledger_sums_to_zero(engine)


async def test_a_transfer_that_times_out_after_commit_is_made_once(
    parties: Parties, emulator_control, stack_settings: Settings
) -> None:
    seller = await merchant_with_sales(parties, "monthly", 1500)
    fault = {"path": "/v1/transfers", "action": "timeout_after_commit", "hang_seconds": 3, "times": 1}
    assert emulator_control("POST", "/faults", json=fault).status_code == 201
    asked = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    await wait_for_payout(seller, asked.json()["id"], "paid")
    assert [t.amount for t in transfers_to(stack_settings, await account_of(seller))] == [net(1500)]


async def test_a_refund_after_a_payout_leaves_a_deficit_that_later_captures_net(
    parties: Parties, engine: AsyncEngine, temporal_client: Client, stack_settings: Settings
) -> None:
    seller = await merchant_with_sales(parties, "monthly")
    sale = await seller.captured(1000)
    paid = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert paid.status_code == 202, paid.text
    await wait_for_payout(seller, paid.json()["id"], "paid")

    refund = await seller.refund(sale["id"])
    assert refund.status_code == 201, refund.text  # never refused for the merchant's balance
    assert (await balance(seller))["available"] == -net(1000)  # the money was paid out: a deficit
    nothing = await parties.api.post(
        "/payouts/schedule",
        json={"merchant_id": seller.merchant_id, "idempotency_key": fresh_key()},
        headers=seller.as_merchant,
    )
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "insufficient_balance"
    await run_payouts(temporal_client, stack_settings, "monthly", f"deficit-{fresh_key()[:8]}")
    assert len(await payouts_of(engine, seller.merchant_id)) == 1  # the scheduled run paid it nothing

    await seller.captured(3000)  # nets against the deficit first
    assert (await balance(seller))["available"] == net(3000) - net(1000)
    period = f"netted-{fresh_key()[:8]}"
    await run_payouts(temporal_client, stack_settings, "monthly", period)
    assert [p.amount for p in await payouts_of(engine, seller.merchant_id) if p.period == period] == [
        net(3000) - net(1000)
    ]
    assert (await balance(seller))["available"] == 0
    assert await ledger_sums_to_zero(engine)


@pytest.mark.timeout(300)  # a worker process started, killed and replaced
async def test_a_worker_killed_mid_run_pays_every_merchant_once(
    parties: Parties,
    stack_settings: Settings,
    temporal_client: Client,
    emulator_control,
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    sellers = [await merchant_with_sales(parties, "monthly", 1000 + i) for i in range(4)]
    settings = stack_settings.model_copy(update={"temporal_task_queue": f"payout-chaos-{fresh_key()}"})
    slow = {"path": "/v1/transfers", "action": "latency", "latency_ms": 1000, "times": 100}
    fault = emulator_control("POST", "/faults", json=slow).json()
    period = f"chaos-{fresh_key()[:8]}"
    first = worker_process(settings, tmp_path / "worker.log")
    try:
        run = asyncio.create_task(run_payouts(temporal_client, settings, "monthly", period))
        merchant_ids = [s.merchant_id for s in sellers]
        await eventually(lambda: paid_count(engine, merchant_ids), lambda paid: paid > 0, "a first payout", 60)
        summary = await after_worker_replaced(first, settings, tmp_path / "worker.log", run, 120)
    finally:
        if first.poll() is None:
            first.kill()
        emulator_control("DELETE", f"/faults/{fault['id']}")
    assert summary.period == period
    for seller, sale in zip(sellers, range(4), strict=True):
        payouts = await payouts_of(engine, seller.merchant_id)
        assert [(p.amount, p.status) for p in payouts] == [(net(1000 + sale), "paid")]
        assert len(transfers_to(stack_settings, await account_of(seller))) == 1
