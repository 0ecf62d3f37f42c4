"""Cards on file: a Stripe Customer per user (created the first time one saves a card) and the cards
saved on it through a SetupIntent, with 3-D Secure when the bank asks.

No money moves here, and each Stripe call carries an idempotency key derived from the request's,
so the routes call Stripe themselves instead of starting a workflow: a repeat after a crash makes
the same Customer, the same SetupIntent and the same row."""

from __future__ import annotations

from typing import Any

import stripe
from fastapi import APIRouter, Response, status
from sqlalchemy import select, update

from payments.api.auth import Principal
from payments.api.cards_on_file import card_id, customer_of, has_default, keep, kept_at_stripe, payment_method_of
from payments.api.contract import errors
from payments.api.deps import CurrentPrincipal, ServicesDep, Session
from payments.api.errors import ApiError, Forbidden, IdempotencyKeyReused, NotFound, ServiceUnavailable
from payments.api.idempotency import REPLAY_HEADER
from payments.api.models import SavedCardCreate, SavedCardList, SavedCardOut
from payments.schema.tables import SavedCard, User

router = APIRouter(tags=["saved cards"])


class CardNotSaved(ApiError):
    status, code, message = 402, "card_declined", "The bank refused to save this card."


class UnknownCardToken(ApiError):
    status, code, message = 422, "unknown_card_token", "Stripe knows no such card token for this user."


def _out(card: SavedCard, client_secret: str | None = None) -> SavedCardOut:
    return SavedCardOut(
        id=card.id,
        status=card.status,  # type: ignore[arg-type]  # the CHECK constraint holds it to SavedCardStatus
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=card.is_default,
        client_secret=client_secret,
    )


def _own(principal: Principal, user_id: str) -> None:
    """Only the user changes their cards: another user's answer 404; merchants and operators 403."""
    if not principal.is_("user"):
        raise Forbidden()
    if not principal.is_("user", user_id):
        raise NotFound()


async def _user_cards(session: Session, user_id: str) -> list[SavedCard]:
    query = select(SavedCard).where(SavedCard.user_id == user_id).order_by(SavedCard.created_at, SavedCard.id)
    return list((await session.scalars(query)).all())


async def _refresh(session: Session, client: stripe.StripeClient, card: SavedCard) -> None:
    """A card waiting on 3-D Secure becomes active once Stripe's SetupIntent succeeded."""
    if card.status != "requires_action" or card.setup_intent_id is None:
        return
    setup = await client.v1.setup_intents.retrieve_async(card.setup_intent_id)
    if setup.status == "succeeded":
        card.status = "active"
        card.is_default = not await has_default(session, card.user_id)  # the first usable card
        await session.commit()


@router.post(
    "/users/{user_id}/cards",
    status_code=status.HTTP_201_CREATED,
    summary="Save a card on file (user: self)",
    responses={
        200: {"model": SavedCardOut, "description": "A repeat of the key: the card", "headers": REPLAY_HEADER},
        **errors(NotFound, CardNotSaved, UnknownCardToken, IdempotencyKeyReused, ServiceUnavailable),
    },
)
async def save_card(
    user_id: str,
    body: SavedCardCreate,
    response: Response,
    principal: CurrentPrincipal,
    services: ServicesDep,
    session: Session,
) -> SavedCardOut:
    """Saves the card on the user's Stripe Customer through a SetupIntent. A card whose bank asks
    for 3-D Secure answers `requires_action` with the SetupIntent's client secret; it turns
    `active` (and can pay) once the customer authenticated. A declined card is not saved (402);
    a token Stripe does not know, or another customer's card, is 422 `unknown_card_token`."""
    _own(principal, user_id)
    cid = card_id(user_id, body.idempotency_key)
    existing = await session.get(SavedCard, cid)
    if existing is not None:
        await _refresh(session, services.stripe, existing)
        response.status_code, response.headers["Idempotent-Replayed"] = 200, "true"
        return _out(existing)
    customer = await customer_of(session, services.stripe, user_id)
    params: dict[str, Any] = {
        "customer": customer,
        "payment_method": body.card_token,
        "confirm": True,
        "usage": "off_session",
        "metadata": {"card_id": cid, "user_id": user_id},
        "expand": ["payment_method"],
    }
    try:
        setup = await services.stripe.v1.setup_intents.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": f"{cid}:setup"},
        )
    except stripe.CardError as exc:
        raise CardNotSaved(exc.user_message or CardNotSaved.message) from exc
    except stripe.IdempotencyError as exc:
        if exc.http_status == 409:  # the key's first request is still at Stripe
            raise ServiceUnavailable("This card is still being saved; send the request again.", retry_after=1) from exc
        raise IdempotencyKeyReused() from exc  # the key's first request named another card
    except stripe.InvalidRequestError as exc:
        if exc.error is not None and exc.error.param == "payment_method":  # missing, or another's
            raise UnknownCardToken() from exc
        raise
    method = setup.payment_method
    assert isinstance(method, stripe.PaymentMethod)
    status = "active" if setup.status == "succeeded" else "requires_action"
    card = await keep(session, services.keyring, user_id, cid, method, status=status, setup_intent_id=setup.id)
    return _out(card, setup.client_secret if card.status == "requires_action" else None)


@router.get(
    "/users/{user_id}/cards",
    summary="A user's cards on file (user: self, operator)",
    responses=errors(NotFound),
)
async def list_cards(
    user_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> SavedCardList:
    """Brand, last four and expiry of each card, oldest first; never the processor's token. A
    merchant, or another user, gets 404 as for a missing user."""
    if not (principal.is_("operator") or principal.is_("user", user_id)):
        raise NotFound()
    await kept_at_stripe(session, services.stripe, services.keyring, user_id)
    cards = await _user_cards(session, user_id)
    for card in cards:
        await _refresh(session, services.stripe, card)
    return SavedCardList(data=[_out(card) for card in cards])


async def _own_card(session: Session, principal: Principal, user_id: str, cid: str) -> SavedCard:
    _own(principal, user_id)
    card = await session.get(SavedCard, cid, with_for_update=True)
    if card is None or card.user_id != user_id:
        raise NotFound()
    return card


@router.delete(
    "/users/{user_id}/cards/{card_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a card on file (user: self)",
    responses=errors(NotFound),
)
async def delete_card(
    user_id: str, card_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> Response:
    """Detaches the PaymentMethod at Stripe (it can no longer pay), then forgets the card."""
    card = await _own_card(session, principal, user_id, card_id)
    try:
        await services.stripe.v1.payment_methods.detach_async(payment_method_of(services.keyring, card))
    except stripe.InvalidRequestError as exc:
        if "not attached" not in str(exc):
            raise  # only an earlier detach (a repeat after a crash) counts as done
    await session.delete(card)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/users/{user_id}/cards/{card_id}/default",
    summary="Make a card on file the default one (user: self)",
    responses=errors(NotFound),
)
async def make_default(
    user_id: str, card_id: str, principal: CurrentPrincipal, services: ServicesDep, session: Session
) -> SavedCardOut:
    """The default card is the one the checkout page offers first; Stripe's Customer names it too."""
    card = await _own_card(session, principal, user_id, card_id)
    await _refresh(session, services.stripe, card)
    if card.status != "active":
        raise NotFound()  # not saved until 3-D Secure passes
    user = await session.get(User, user_id)
    assert user is not None and user.stripe_customer_id is not None
    await services.stripe.v1.customers.update_async(
        user.stripe_customer_id,
        params={"invoice_settings": {"default_payment_method": payment_method_of(services.keyring, card)}},
    )
    await session.execute(
        update(SavedCard).where(SavedCard.user_id == user_id, SavedCard.id != card.id).values(is_default=False)
    )
    card.is_default = True
    await session.commit()
    return _out(card)
