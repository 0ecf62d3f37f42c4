"""Refunds follow Stripe's word on them: `pending` until Stripe reports them `succeeded`, and a
refund that the card network returns later (even after it was recorded succeeded) is reversed in
the ledger, given back on the payment, announced once as `refund.failed` and sent to the merchant.
Stripe's `charge.refund.updated` webhook is a hint: the refund's settlement workflow reads the
Refund back, and starts anew when the refund's workflows have ended."""

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.config.settings import Settings
from payments.schema.tables import OutboxEvent, Refund
from tests.integration.conftest import Parties
from tests.integration.disputes.test_disputes import events_of, postings_like
from tests.integration.merchant_webhooks.test_merchant_webhooks import add_endpoint, delivered, the_delivery
from tests.integration.merchant_webhooks.webhook_receiver import receiving
from tests.integration.payouts.test_payouts import balance, ledger_sums_to_zero
from tests.integration.reconciliation.test_reconciliation import reconcile, subjects_logged_by
from tests.services import eventually


async def captured_with(parties: Parties, amount: int, card: str) -> dict[str, Any]:
    tx = await parties.authorized(amount, card)
    confirmed = await parties.confirm(tx["id"])
    assert confirmed.status_code == 200, confirmed.text
    return dict(confirmed.json())


async def refund_row(engine: AsyncEngine, refund_id: str, status: str | None = None) -> Refund:
    async def read() -> Refund:
        async with engine.connect() as conn:
            return (await conn.execute(select(Refund).where(Refund.id == refund_id))).one()  # type: ignore[return-value]

    return await eventually(read, lambda r: status is None or r.status == status, f"{refund_id} {status}", 30)  # type: ignore[return-value]


async def postings(engine: AsyncEngine, refund_id: str) -> dict[str, dict[str, int]]:
    return await postings_like(engine, f"refund:{refund_id}%")


def network(emulator_control: Any, stripe_refund_id: str, outcome: str, **body: Any) -> None:
    settled: httpx.Response = emulator_control("POST", f"/refunds/{stripe_refund_id}/{outcome}", json=body)
    assert settled.status_code == 200, settled.text


async def test_a_pending_refund_is_recorded_pending_until_stripe_reports_it_succeeded(
    parties: Parties, engine: AsyncEngine, emulator_control
) -> None:
    tx = await captured_with(parties, 1000, "pm_card_pendingRefund")
    created = await parties.refund(tx["id"], 400, key="pending-1")
    assert created.status_code == 201 and created.json()["status"] == "pending", created.text
    refund_id = created.json()["id"]
    # Stripe took the money from the balance when it accepted the refund: so do the books.
    shown = await parties.get(tx["id"])
    assert (shown["amount_refunded"], shown["status"]) == (400, "partially_refunded")
    assert list(await postings(engine, refund_id)) == [f"refund:{refund_id}"]
    assert await events_of(engine, refund_id) == []
    again = await parties.refund(tx["id"], 400, key="pending-1")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    assert (await parties.refund(tx["id"], 601)).json()["error"]["code"] == "refund_exceeds_captured"

    row = await refund_row(engine, refund_id)
    network(emulator_control, row.stripe_refund_id, "succeed")
    await refund_row(engine, refund_id, "succeeded")
    assert await events_of(engine, refund_id) == ["refund.succeeded"]
    assert list(await postings(engine, refund_id)) == [f"refund:{refund_id}"]
    assert (await parties.get(tx["id"]))["amount_refunded"] == 400
    replay = await parties.refund(tx["id"], 400, key="pending-1")
    assert replay.status_code == 200 and replay.json()["status"] == "succeeded"


async def test_a_refund_failing_after_it_succeeded_is_reversed_and_the_merchant_told(
    parties: Parties, engine: AsyncEngine, emulator_control, temporal_client: Client, stack_settings: Settings
) -> None:
    with receiving() as receiver:
        await add_endpoint(parties, receiver.url, ["refund.failed"])
        tx = await parties.captured(1000)
        before = await balance(parties)
        created = await parties.refund(tx["id"], 600)
        assert created.status_code == 201 and created.json()["status"] == "succeeded", created.text
        refund_id = created.json()["id"]
        assert (await balance(parties))["available"] < before["available"]
        row = await refund_row(engine, refund_id)

        network(emulator_control, row.stripe_refund_id, "fail", failure_reason="lost_or_stolen_card")
        failed = await refund_row(engine, refund_id, "failed")
        assert failed.failure_code == "lost_or_stolen_card"
        shown = await parties.get(tx["id"])
        assert (shown["amount_refunded"], shown["status"]) == (0, "confirmed")
        posted = await postings(engine, refund_id)
        assert list(posted) == [f"refund:{refund_id}", f"refund:{refund_id}:reversal"]
        assert posted[f"refund:{refund_id}:reversal"] == {k: -v for k, v in posted[f"refund:{refund_id}"].items()}
        assert (await balance(parties))["available"] == before["available"]
        assert await events_of(engine, refund_id) == ["refund.succeeded", "refund.failed"]
        async with engine.connect() as conn:
            event_id = (
                await conn.execute(
                    select(OutboxEvent.id).where(
                        OutboxEvent.aggregate_id == refund_id, OutboxEvent.type == "refund.failed"
                    )
                )
            ).scalar_one()
        await the_delivery(parties, event_id, delivered)
    told = [r.event for r in receiver.received if r.event["type"] == "refund.failed"]
    assert [e["data"]["object"]["refund_id"] for e in told] == [refund_id]
    assert told[0]["data"]["object"]["failure_code"] == "lost_or_stolen_card"
    assert await ledger_sums_to_zero(engine)
    run_id, _ = await reconcile(temporal_client, stack_settings)  # the payable formula explains it
    assert await subjects_logged_by(engine, run_id, (parties.merchant_id,)) == []


async def test_a_refund_webhook_after_every_workflow_of_the_refund_ended_still_heals(
    parties: Parties, engine: AsyncEngine, emulator_control
) -> None:
    tx = await captured_with(parties, 900, "pm_card_pendingRefund")
    created = await parties.refund(tx["id"])
    refund_id = created.json()["id"]
    row = await refund_row(engine, refund_id)
    network(emulator_control, row.stripe_refund_id, "succeed")
    await refund_row(engine, refund_id, "succeeded")
    assert (await parties.get(tx["id"]))["status"] == "refunded"

    network(emulator_control, row.stripe_refund_id, "fail")  # days later: the workflow that followed it has ended
    await refund_row(engine, refund_id, "failed")
    shown = await parties.get(tx["id"])
    assert (shown["amount_refunded"], shown["status"]) == (0, "confirmed")
    assert await events_of(engine, refund_id) == ["refund.succeeded", "refund.failed"]
    assert len(await postings(engine, refund_id)) == 2
    retried = await parties.refund(tx["id"], 900)  # the payment may be refunded again
    assert retried.status_code == 201, retried.text
