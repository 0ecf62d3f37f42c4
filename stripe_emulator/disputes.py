"""Disputes (chargebacks) as Stripe models them: a test card that the cardholder disputes right
after capture (`pm_card_createDispute`, 4000 0000 0000 0259) opens one for the whole amount,
withdraws it with Stripe's dispute fee, takes evidence (`submit=true`: under_review) or closes as
lost; the control API decides the bank's outcome (won reinstates the amount, never the fee)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.payment_methods import behaviour_of
from stripe_emulator.store import Obj
from stripe_emulator.wire import invalid

EVIDENCE_DAYS = 7  # Stripe gives 7 to 21 days; the shortest keeps tests of the deadline honest
OPEN = ("warning_needs_response", "needs_response", "warning_under_review", "under_review")
CLOSED = ("won", "lost", "warning_closed")


def open_if_disputed(emu: Emulator, charge: Obj) -> Obj | None:
    """After a capture: the dispute that the charge's test card asks for, if it asks for one."""
    card = behaviour_of(emu, charge["payment_method"])
    if not card.disputed:
        return None
    amount, cur = charge["amount_captured"], charge["currency"]
    dispute = build(
        "dispute",
        "dp",
        amount=amount,
        currency=cur,
        charge=charge["id"],
        payment_intent=charge["payment_intent"],
        reason="fraudulent",
        status="needs_response",
        is_charge_refundable=False,
        balance_transactions=[],
    )
    dispute["evidence_details"].update(
        due_by=dispute["created"] + EVIDENCE_DAYS * 86_400, has_evidence=False, past_due=False, submission_count=0
    )
    dispute["payment_method_details"]["card"].update(brand=charge["payment_method_details"]["card"]["brand"])
    withdrawal = emu.balance_transaction(
        "adjustment", dispute["id"], -amount, cur, emu.fees.dispute, "dispute", "Dispute fee"
    )
    dispute["balance_transactions"].append(withdrawal)
    charge["disputed"] = True
    emu.store.put(charge)
    emu.store.put(dispute)
    emu.store.count("disputes.create", charge["payment_intent"] or charge["id"])
    emu.emit("charge.dispute.created", dispute)
    emu.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def _open(emu: Emulator, dispute_id: str) -> Obj:
    dispute = emu.find("dispute", dispute_id, "dispute")
    if dispute["status"] in CLOSED:
        raise invalid(
            f"This dispute is already closed (status {dispute['status']}).", "charge_dispute_closed", "dispute"
        )
    return dispute


async def update(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    """Evidence fields (kept until submitted), metadata, and `submit=true` to send it to the bank."""
    dispute = _open(emu, path["id"])
    evidence: dict[str, Any] = params.get("evidence") or {}
    unknown = set(evidence) - set(dispute["evidence"])
    if unknown:
        raise invalid(f"Received unknown parameter: evidence[{sorted(unknown)[0]}]", "parameter_unknown", "evidence")
    if evidence and dispute["status"] not in ("needs_response", "warning_needs_response"):
        raise invalid("This dispute's evidence was already submitted.", "charge_dispute_closed", "evidence")
    dispute["evidence"].update(evidence)
    dispute["evidence_details"]["has_evidence"] = any(
        v for k, v in dispute["evidence"].items() if k != "enhanced_evidence"
    )
    dispute["metadata"].update(params.get("metadata") or {})
    if str(params.get("submit", "false")).lower() == "true" and dispute["status"] == "needs_response":
        dispute["status"] = "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    emu.store.put(dispute)
    emu.emit("charge.dispute.updated", dispute)
    return dispute


async def close(emu: Emulator, _: dict[str, Any], path: dict[str, str]) -> Obj:
    """The merchant accepts the dispute: it is lost at once, the withdrawal stands."""
    dispute = _open(emu, path["id"])
    dispute["status"] = "lost"
    emu.store.put(dispute)
    emu.store.count("disputes.close", dispute["id"])
    emu.emit("charge.dispute.closed", dispute)
    return dispute


def decide(emu: Emulator, dispute_id: str, won: bool, deliver: bool = True) -> Obj:
    """The bank's decision (the control API): won reinstates the disputed amount, not the fee."""
    dispute = _open(emu, dispute_id)
    dispute["status"] = "won" if won else "lost"
    if won:
        reinstated = emu.balance_transaction(
            "adjustment", dispute["id"], dispute["amount"], dispute["currency"], category="dispute_reversal"
        )
        dispute["balance_transactions"].append(reinstated)
    emu.store.put(dispute)
    emu.emit("charge.dispute.closed", dispute, deliver=deliver)
    if won:
        emu.emit("charge.dispute.funds_reinstated", dispute, deliver=deliver)
    return dispute


retrieve = retriever("dispute", "dispute")
list_all = lister("dispute", "/v1/disputes", "charge", "payment_intent")
