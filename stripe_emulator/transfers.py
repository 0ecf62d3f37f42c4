"""Transfers to connected accounts (refused when the platform's available balance is short), their
reversals (money pulled back from the connected account, never more than is left of the transfer),
and the platform Balance and its Balance transactions."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import list_objects, lister, retriever
from stripe_emulator.objects import build, new_id
from stripe_emulator.store import Obj
from stripe_emulator.wire import currency, invalid, positive_int, required


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    amount = positive_int(params, "amount")
    cur = currency(params)
    destination = emu.find("account", required(params, "destination"), "destination")
    if emu.available().get(cur, 0) < amount:
        raise invalid(
            "You have insufficient available funds in your Stripe account. Try adding funds directly to your "
            "available balance by creating Charges using the 4000000000000077 test card.",
            "balance_insufficient",
        )
    transfer = build(
        "transfer",
        "tr",
        amount=amount,
        amount_reversed=0,
        currency=cur,
        description=params.get("description"),
        destination=destination["id"],
        destination_payment=new_id("py"),
        metadata=params.get("metadata", {}),
        reversed=False,
        source_transaction=params.get("source_transaction"),
        transfer_group=params.get("transfer_group"),
    )
    transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
    txn = emu.balance_transaction("transfer", transfer["id"], -amount, cur)
    transfer["balance_transaction"] = txn["id"]
    emu.store.put(transfer)
    emu.store.count("transfers.create", destination["id"])
    emu.emit("transfer.created", transfer)
    return transfer


async def reverse(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    transfer = emu.find("transfer", path["id"], "id")
    remaining = transfer["amount"] - transfer["amount_reversed"]
    amount = positive_int(params, "amount", remaining)
    if amount > remaining:
        raise invalid(
            f"You have attempted to reverse {amount} of a transfer with only {remaining} left to reverse.",
            "amount_too_large",
            "amount",
        )
    reversal = build(
        "transfer_reversal",
        "trr",
        amount=amount,
        currency=transfer["currency"],
        transfer=transfer["id"],
        metadata=params.get("metadata", {}),
    )
    reversal["balance_transaction"] = emu.balance_transaction(
        "transfer_refund", reversal["id"], amount, transfer["currency"], category="transfer_reversal"
    )["id"]
    emu.store.put(reversal)
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
    emu.store.put(transfer)
    emu.store.count("transfers.reverse", transfer["id"])
    emu.emit("transfer.reversed", transfer)
    return reversal


async def list_reversals(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    transfer = emu.find("transfer", path["id"], "id")
    url = f"/v1/transfers/{transfer['id']}/reversals"
    return list_objects(emu.store, "transfer_reversal", url, params, lambda r: r["transfer"] == transfer["id"])


async def balance(emu: Emulator, _: dict[str, Any], __: dict[str, str]) -> Obj:
    available = emu.available() or {"usd": 0}
    return {
        "object": "balance",
        "livemode": False,
        "available": [{"amount": a, "currency": c, "source_types": {"card": a}} for c, a in available.items()],
        "pending": [{"amount": 0, "currency": c, "source_types": {"card": 0}} for c in available],
        "connect_reserved": [{"amount": 0, "currency": c} for c in available],
    }


retrieve = retriever("transfer", "transfer")
list_all = lister("transfer", "/v1/transfers", "destination", "transfer_group")
retrieve_balance_transaction = retriever("balance_transaction")
list_balance_transactions = lister("balance_transaction", "/v1/balance_transactions", "type", "source")
