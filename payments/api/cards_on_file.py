"""Cards on file as the routes share them: the user's Stripe Customer, and a saved card's
PaymentMethod id, opened only to talk to Stripe (saved-card routes and POST /payments/init)."""

from __future__ import annotations

import hashlib
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from payments.api.deps import Session
from payments.api.errors import NotFound
from payments.config.keyring import Keyring, Sealed
from payments.schema.messages import PaymentView
from payments.schema.tables import SavedCard, Transaction, User


def card_id(user_id: str, idempotency_key: str) -> str:
    """Derived from a key: a repeat converges on one row and one SetupIntent."""
    return "card_" + hashlib.sha256(f"{user_id}:{idempotency_key}".encode()).hexdigest()[:32]


def payment_method_of(keyring: Keyring, card: SavedCard) -> str:
    return keyring.open(Sealed(card.payment_method_key_id, card.payment_method), card.id.encode()).decode()


async def customer_of(session: Session, client: stripe.StripeClient, user_id: str) -> str:
    """The user's Stripe Customer, created the first time it is needed (one per user: the row lock
    and the idempotency key keep two first saves from making two)."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound()
    if user.stripe_customer_id is None:
        customer = await client.v1.customers.create_async(
            params={"metadata": {"user_id": user_id}}, options={"idempotency_key": f"{user_id}:customer"}
        )
        user.stripe_customer_id = customer.id
    customer_id = user.stripe_customer_id
    await session.commit()
    return customer_id


async def active_card(session: Session, user_id: str, saved_card_id: str) -> SavedCard:
    """The user's own card, saved and usable; anyone else's (or one still in 3-D Secure) is 404."""
    card = await session.get(SavedCard, saved_card_id)
    if card is None or card.user_id != user_id or card.status != "active":
        raise NotFound("No such saved card.")
    return card


async def has_default(session: Session, user_id: str) -> bool:
    query = select(SavedCard.id).where(SavedCard.user_id == user_id, SavedCard.is_default).limit(1)
    return await session.scalar(query) is not None


async def keep(
    session: Session, keyring: Keyring, user_id: str, cid: str, method: stripe.PaymentMethod, **row: Any
) -> SavedCard:
    """A new card on file: its PaymentMethod id sealed, brand, last four and expiry readable; the
    user's first usable card becomes their default."""
    assert method.card is not None
    sealed = keyring.seal(method.id.encode(), cid.encode())
    card = SavedCard(
        id=cid,
        user_id=user_id,
        payment_method=sealed.blob,
        payment_method_key_id=sealed.key_id,
        brand=method.card.brand,
        last4=method.card.last4,
        exp_month=method.card.exp_month,
        exp_year=method.card.exp_year,
        is_default=row.get("status") == "active" and not await has_default(session, user_id),
        **row,
    )
    session.add(card)
    await session.commit()
    return card


async def keep_card_paid_with(
    session: Session, client: stripe.StripeClient, keyring: Keyring, view: PaymentView
) -> None:
    """`save_card: true`: Stripe keeps the card on the Customer once the payment authorizes
    (setup_future_usage); the card joins the user's cards on file then."""
    if view.status != "authorized":
        return
    intent_id = await session.scalar(select(Transaction.stripe_payment_intent_id).where(Transaction.id == view.tx_id))
    if not intent_id:
        return
    intent = await client.v1.payment_intents.retrieve_async(intent_id, params={"expand": ["payment_method"]})
    method = intent.payment_method
    if isinstance(method, stripe.PaymentMethod) and method.customer:
        await keep_found(session, keyring, view.user_id, method)


async def keep_found(session: Session, keyring: Keyring, user_id: str, method: stripe.PaymentMethod) -> None:
    """A card Stripe keeps on the user's Customer that was saved while paying: one row per
    PaymentMethod, whichever of the payment and a listing finds it first."""
    cid = card_id(user_id, f"pm:{method.id}")
    if await session.get(SavedCard, cid) is not None:
        return
    try:
        await keep(session, keyring, user_id, cid, method, status="active")
    except IntegrityError:
        await session.rollback()  # found at the same moment by another request: kept once


async def kept_at_stripe(session: Session, client: stripe.StripeClient, keyring: Keyring, user_id: str) -> None:
    """Cards Stripe keeps on the Customer that the user has no row for yet: a card saved while
    paying whose payment authorized only after 3-D Secure (no request of ours was waiting then)."""
    customer = await session.scalar(select(User.stripe_customer_id).where(User.id == user_id))
    if customer is None:
        return
    ours = await session.scalars(select(SavedCard).where(SavedCard.user_id == user_id))
    known = {payment_method_of(keyring, card) for card in ours}
    at_stripe = await client.v1.customers.payment_methods.list_async(customer, params={"limit": 100})
    for method in at_stripe.data:
        if method.id not in known:
            await keep_found(session, keyring, user_id, method)
