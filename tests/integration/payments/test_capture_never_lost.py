"""Issue 25, the fault: Stripe has captured, then the worker stalls before it reports the capture,
the Temporal server restarts, and the API process that carried the confirm dies, so nobody sends it
again. Within 2 minutes, with no client retrying, our books must hold that capture once: the row
confirmed for the amount, one `capture:` posting, and one capture at Stripe.

On a throwaway `make dev` stack, each part in its own process (devstack/throwaway.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select

from chaos.lost_confirm import lose_the_confirm
from devstack.throwaway import Stack, running_stack
from payments.api.auth import mint_token
from payments.schema.database import create_engine
from payments.schema.tables import LedgerAccount, LedgerEntry, LedgerTransaction
from tests.integration.conftest import CAPTURE, open_merchant
from tests.services import eventually

AMOUNT = 4_200
HELD_SECONDS = 60  # longer than the frozen worker waits for the capture's answer before it stalls
HEALED_WITHIN = 120.0


def _stripe(stack: Stack) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": stack.stripe_api_base()})


def _intents_of(stack: Stack, tx_id: str) -> list[stripe.PaymentIntent]:
    intents = _stripe(stack).v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    return [i for i in intents if i.metadata.to_dict().get("tx_id") == tx_id]


async def _authorized_payment(stack: Stack, http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_fault', 'operator')}"}
    user = (await http.post("/users", json={"name": "Payer"}, headers=operator)).json()["id"]
    merchant = await open_merchant(http, operator, {"name": "Shop", "currency": "usd"})
    as_user = {"Authorization": f"Bearer {mint_token(stack.settings, user, 'user')}"}
    body = {
        "user_id": user,
        "merchant_id": merchant["id"],
        "amount": AMOUNT,
        "currency": "usd",
        "card_token": "pm_card_visa",
        "idempotency_key": "capture-never-lost",
    }
    init = await http.post("/payments/init", json=body, headers=as_user)
    assert init.status_code == 201 and init.json()["status"] == "authorized", init.text
    return init.json()["id"], as_user


async def _payment(http: httpx.AsyncClient, tx_id: str, as_user: dict[str, str]) -> dict[str, Any]:
    """GET /payments/{id}: the payment, or the error envelope of an API still coming up."""
    return dict((await http.get(f"/payments/{tx_id}", headers=as_user)).json())


async def _capture_postings(stack: Stack, tx_id: str) -> list[tuple[str, int]]:
    """Each `capture:{tx_id}` ledger transaction with what it put into Stripe clearing."""
    engine = create_engine(stack.database_url(), pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(LedgerTransaction.reference, func.sum(LedgerEntry.amount))
                .join(LedgerEntry, LedgerEntry.ledger_transaction_id == LedgerTransaction.id)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerTransaction.reference == f"capture:{tx_id}", LedgerAccount.code == "stripe_clearing")
                .group_by(LedgerTransaction.reference)
            )
            return [(reference, int(amount)) for reference, amount in rows]
    finally:
        await engine.dispose()


async def _lose_a_committed_capture(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        tx_id, as_user = await _authorized_payment(stack, http)
        fault = {"action": "timeout_after_commit", "path": CAPTURE, "hang_seconds": HELD_SECONDS, "times": 1}
        held = await http.post(f"{stack.stripe_api_base()}/_emulator/faults", json=fault)
        assert held.status_code == 201, held.text

        # One attempt, no retry: the client drops the payment when its connection dies.
        async with httpx.AsyncClient(base_url=stack.api, timeout=600) as once:
            confirm = asyncio.create_task(once.post("/payments/confirm", json={"tx_id": tx_id}, headers=as_user))
            intent = await eventually(
                lambda: asyncio.to_thread(_intents_of, stack, tx_id),
                lambda intents: [i.status for i in intents] == ["succeeded"],
                "Stripe to capture the payment",
                within=60,
            )
            frozen = await asyncio.to_thread(lose_the_confirm, stack)
            try:
                await asyncio.to_thread(stack.add, "worker")  # the frozen one stays frozen
                with pytest.raises(httpx.TransportError):
                    await confirm  # its API died: the client got no answer, and does not retry
                lost_at = time.monotonic()
                row = await eventually(
                    lambda: _payment(http, tx_id, as_user),
                    lambda payment: payment.get("status") == "confirmed",
                    "our row to record the capture Stripe holds",
                    within=HEALED_WITHIN,
                )
                print(f"recorded {time.monotonic() - lost_at:.1f} s after the confirm was lost", flush=True)
            finally:
                for worker in frozen:
                    worker.kill()
        counters = (await http.get(f"{stack.stripe_api_base()}/_emulator/counters")).json()
    return {
        "row": row,
        "intents": await asyncio.to_thread(_intents_of, stack, tx_id),
        "captures": counters.get("payment_intents.capture", {}).get(intent[0].id, 0),
        "postings": await _capture_postings(stack, tx_id),
        "tx_id": tx_id,
    }


@pytest.mark.chaos
@pytest.mark.timeout(480)
def test_a_capture_whose_confirm_is_lost_with_the_api_is_recorded_once_without_any_retry() -> None:
    with running_stack(None) as stack:
        seen = asyncio.run(_lose_a_committed_capture(stack))
    assert (seen["row"]["status"], seen["row"]["amount_captured"]) == ("confirmed", AMOUNT)
    assert seen["postings"] == [(f"capture:{seen['tx_id']}", AMOUNT)]
    assert [(i.status, i.amount_received) for i in seen["intents"]] == [("succeeded", AMOUNT)]
    assert seen["captures"] == 1
