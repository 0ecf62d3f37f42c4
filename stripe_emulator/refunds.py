"""Refunds, full or partial, never beyond what was captured."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.store import Obj
from stripe_emulator.wire import invalid, positive_int

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _charge_for(emu: Emulator, params: dict[str, Any]) -> Obj:
    if params.get("charge"):
        return emu.find("charge", params["charge"], "charge")
    if params.get("payment_intent"):
        intent = emu.find("payment_intent", params["payment_intent"], "payment_intent")
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "charge_not_refundable"
                if intent["status"] != "requires_capture"
                else "payment_intent_unexpected_state",
                "payment_intent",
            )
        return emu.find("charge", intent["latest_charge"], "payment_intent")
    raise invalid(
        "One of the following params should be provided for this request: payment_intent or charge.",
        "parameter_missing",
    )


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    charge = _charge_for(emu, params)
    if not charge["captured"]:
        raise invalid(
            f"Charge {charge['id']} has not been captured.",
            "charge_not_refundable",
            "charge",
        )
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.",
            "charge_already_refunded",
            "charge",
        )
    amount = positive_int(params, "amount", remaining)
    if amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            "amount_too_large",
            "amount",
        )
    reason = params.get("reason")
    if reason is not None and reason not in REASONS:
        raise invalid(f"Invalid reason: {reason}", "parameter_invalid_string", "reason")
    refund = build(
        "refund",
        "re",
        amount=amount,
        charge=charge["id"],
        currency=charge["currency"],
        payment_intent=charge["payment_intent"],
        metadata=params.get("metadata", {}),
        reason=reason,
        status="succeeded",
        customer=None,
        payment_method=charge["payment_method"],
    )
    txn = emu.balance_transaction("refund", refund["id"], -amount, charge["currency"])
    refund["balance_transaction"] = txn["id"]
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    emu.store.put(refund)
    emu.store.put(charge)
    emu.store.count("refunds.create", charge["payment_intent"] or charge["id"])
    emu.emit("refund.created", refund)
    emu.emit("charge.refunded", charge)
    return refund


retrieve = retriever("refund", "refund")
list_all = lister("refund", "/v1/refunds", "payment_intent", "charge")
