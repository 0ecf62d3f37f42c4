"""A payment's whole story: `GET /payments/{tx_id}/timeline`."""

from __future__ import annotations

from fastapi import APIRouter

from payments.api.access import visible_transaction
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session
from payments.api.errors import NotFound
from payments.api.models import TimelineOut
from payments.api.timeline import payment_timeline

router = APIRouter(tags=["payments"])


@router.get(
    "/payments/{tx_id}/timeline",
    summary="Everything that happened to one payment, in time order (user: owner, merchant: its own, operator)",
    responses=errors(NotFound),
)
async def get_timeline(tx_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session) -> TimelineOut:
    """Status changes, outbox events, Stripe's PaymentIntent (read at most every 10 s), and for the
    merchant and operator ledger postings (the platform fee among them) and webhook deliveries, with
    the workflow id to open in the Temporal UI."""
    tx = await visible_transaction(services.sessions, tx_id, principal)
    payer = principal.is_("user")
    timeline = await payment_timeline(session, services.stripe, tx, payer=payer, cache=services.redis)
    return TimelineOut.model_validate(timeline)
