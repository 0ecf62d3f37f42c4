"""Disputes as Stripe models them: a test card that the cardholder disputes right after capture
(`pm_card_createDispute`, 4000 0000 0000 0259) opens a chargeback for the whole amount and
withdraws it with Stripe's dispute fee (a balance transaction on the dispute); an inquiry
(`pm_card_createDisputeInquiry`, 4000 0000 0000 1976) moves no money unless it escalates to a
chargeback (control API). It takes evidence (`submit=true`: under review) or closes (accepted:
lost; an inquiry: warning_closed); the control API decides the bank's outcome (won reinstates the
amount, never the fee, by a balance transaction of its own and `funds_reinstated`)."""

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
INQUIRY_OPEN = ("warning_needs_response", "warning_under_review")
RESPONDABLE = ("needs_response", "warning_needs_response")


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
        status="warning_needs_response" if card.inquiry else "needs_response",
        is_charge_refundable=card.inquiry,
        balance_transactions=[],
    )
    dispute["evidence_details"].update(
        due_by=dispute["created"] + EVIDENCE_DAYS * 86_400, has_evidence=False, past_due=False, submission_count=0
    )
    dispute["payment_method_details"]["card"].update(
        brand=charge["payment_method_details"]["card"]["brand"], case_type="inquiry" if card.inquiry else "chargeback"
    )
    charge["disputed"] = True
    emu.store.put(charge)
    emu.store.put(dispute)
    emu.store.count("disputes.create", charge["payment_intent"] or charge["id"])
    emu.emit("charge.dispute.created", dispute)
    if not card.inquiry:
        _withdraw(emu, dispute)
    return dispute


def _withdraw(emu: Emulator, dispute: Obj) -> None:
    """Stripe takes the disputed amount and its dispute fee from the balance."""
    withdrawal = emu.balance_transaction(
        "adjustment", dispute["id"], -dispute["amount"], dispute["currency"], emu.fees.dispute, "dispute", "Dispute fee"
    )
    dispute["balance_transactions"].append(withdrawal)
    emu.store.put(dispute)
    emu.emit("charge.dispute.funds_withdrawn", dispute)


def escalate(emu: Emulator, dispute_id: str) -> Obj:
    """The issuer turns an inquiry into a chargeback (the control API): the money is withdrawn now."""
    dispute = emu.find("dispute", dispute_id, "dispute")
    if dispute["status"] not in INQUIRY_OPEN:
        raise invalid(f"This dispute is not an open inquiry (status {dispute['status']}).", "dispute_not_inquiry")
    was = dispute["status"]
    dispute["status"], dispute["is_charge_refundable"] = "needs_response", False
    dispute["payment_method_details"]["card"]["case_type"] = "chargeback"
    emu.store.put(dispute)
    emu.emit("charge.dispute.updated", dispute, {"status": was})
    _withdraw(emu, dispute)
    return dispute


def reinstate(emu: Emulator, dispute_id: str, deliver: bool = True) -> Obj:
    """Stripe gives a won dispute's amount back (never the fee)."""
    dispute = emu.find("dispute", dispute_id, "dispute")
    if dispute["status"] != "won" or any(t["amount"] > 0 for t in dispute["balance_transactions"]):
        raise invalid(f"Dispute {dispute_id} has nothing to reinstate.", "dispute_not_reinstatable")
    reinstated = emu.balance_transaction(
        "adjustment", dispute["id"], dispute["amount"], dispute["currency"], category="dispute_reversal"
    )
    dispute["balance_transactions"].append(reinstated)
    emu.store.put(dispute)
    emu.emit("charge.dispute.funds_reinstated", dispute, deliver=deliver)
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
    if evidence and dispute["status"] not in RESPONDABLE:
        raise invalid("This dispute's evidence was already submitted.", "charge_dispute_closed", "evidence")
    dispute["evidence"].update(evidence)
    dispute["evidence_details"]["has_evidence"] = any(
        v for k, v in dispute["evidence"].items() if k != "enhanced_evidence"
    )
    dispute["metadata"].update(params.get("metadata") or {})
    if str(params.get("submit", "false")).lower() == "true" and dispute["status"] in RESPONDABLE:
        dispute["status"] = "warning_under_review" if dispute["status"] in INQUIRY_OPEN else "under_review"
        dispute["evidence_details"]["submission_count"] += 1
    emu.store.put(dispute)
    emu.emit("charge.dispute.updated", dispute)
    return dispute


async def close(emu: Emulator, _: dict[str, Any], path: dict[str, str]) -> Obj:
    """The merchant accepts the dispute: it is lost at once, the withdrawal stands (an inquiry
    closes, and no money moves)."""
    dispute = _open(emu, path["id"])
    dispute["status"] = "warning_closed" if dispute["status"] in INQUIRY_OPEN else "lost"
    emu.store.put(dispute)
    emu.store.count("disputes.close", dispute["id"])
    emu.emit("charge.dispute.closed", dispute)
    return dispute


def decide(emu: Emulator, dispute_id: str, won: bool, deliver: bool = True, reinstate_now: bool = True) -> Obj:
    """The bank's decision (the control API): won reinstates the disputed amount, not the fee, at
    once or (`reinstate_now=False`) when `reinstate` is called. An inquiry just closes."""
    dispute = _open(emu, dispute_id)
    inquiry = dispute["status"] in INQUIRY_OPEN
    dispute["status"] = "warning_closed" if inquiry else "won" if won else "lost"
    emu.store.put(dispute)
    emu.emit("charge.dispute.closed", dispute, deliver=deliver)
    if won and not inquiry and reinstate_now:
        reinstate(emu, dispute_id, deliver)
    return dispute


retrieve = retriever("dispute", "dispute")
list_all = lister("dispute", "/v1/disputes", "charge", "payment_intent")
