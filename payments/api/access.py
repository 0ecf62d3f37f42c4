"""Who may see what: another party's payment or merchant answers 404, exactly like a missing one,
so an id reveals nothing. Every route that reads one by id goes through here."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payments.api.auth import Principal
from payments.api.deps import Session
from payments.api.errors import Forbidden, NotFound
from payments.schema.tables import Merchant
from payments.schema.transaction_rows import PaymentRow, payment_by_id


def can_see(principal: Principal, tx: PaymentRow) -> bool:
    return principal.is_("operator") or principal.is_("user", tx.user_id) or principal.is_("merchant", tx.merchant_id)


async def visible_transaction(
    sessions: async_sessionmaker[AsyncSession], tx_id: str, principal: Principal
) -> PaymentRow:
    """The payment's row as it is now (read on a connection of its own, not the request's session);
    another party's payment answers 404, exactly like a missing one."""
    tx = await payment_by_id(sessions, tx_id)
    if tx is None or not can_see(principal, tx):
        raise NotFound()
    return tx


async def own_merchant(session: Session, principal: Principal, merchant_id: str) -> Merchant:
    """The merchant itself or an operator; anyone else's merchant answers 404 like a missing one."""
    if principal.is_("user"):
        raise Forbidden()
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None or not (principal.is_("operator") or principal.is_("merchant", merchant_id)):
        raise NotFound()
    return merchant


def operator_only(principal: Principal) -> None:
    if not principal.is_("operator"):
        raise Forbidden()
