"""Refunds, full or partial, never beyond what was captured. A card refund is `succeeded` at once,
except with `pm_card_pendingRefund` (pending until the control API settles it); either may fail
later, as card networks make them (the control API): the amount comes back to the balance and to
the charge, and `charge.refund.updated` says so."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.payment_methods import behaviour_of
from stripe_emulator.store import Obj
from stripe_emulator.wire import invalid, positive_int

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)


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
        status="pending" if behaviour_of(emu, charge["payment_method"]).refund_pending else "succeeded",
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


def _changed(emu: Emulator, refund: Obj, was: str, deliver: bool) -> None:
    emu.store.put(refund)
    for event_type in ("charge.refund.updated", "refund.updated"):
        emu.emit(event_type, refund, {"status": was}, deliver=deliver)


def succeed(emu: Emulator, refund_id: str, deliver: bool = True) -> Obj:
    """The network confirms a pending refund (the control API)."""
    refund = emu.find("refund", refund_id, "refund")
    if refund["status"] != "pending":
        raise invalid(f"Refund {refund_id} is {refund['status']}, not pending.", "refund_unexpected_state")
    refund["status"] = "succeeded"
    _changed(emu, refund, "pending", deliver)
    return refund


def fail(emu: Emulator, refund_id: str, failure_reason: str, deliver: bool = True) -> Obj:
    """The network returns a refund it had taken, pending or succeeded (the control API): Stripe
    gives the amount back to the balance (a `refund_failure` balance transaction) and to the charge."""
    refund = emu.find("refund", refund_id, "refund")
    if refund["status"] not in ("pending", "succeeded"):
        raise invalid(f"Refund {refund_id} is {refund['status']}.", "refund_unexpected_state")
    if failure_reason not in FAILURE_REASONS:
        raise invalid(f"Invalid failure_reason: {failure_reason}", "parameter_invalid_string", "failure_reason")
    was = refund["status"]
    returned = emu.balance_transaction("refund_failure", refund["id"], refund["amount"], refund["currency"])
    refund.update(status="failed", failure_reason=failure_reason, failure_balance_transaction=returned["id"])
    charge = emu.find("charge", refund["charge"], "charge")
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = False
    emu.store.put(charge)
    _changed(emu, refund, was, deliver)
    emu.emit("refund.failed", refund, deliver=deliver)
    return refund


retrieve = retriever("refund", "refund")
list_all = lister("refund", "/v1/refunds", "payment_intent", "charge")
