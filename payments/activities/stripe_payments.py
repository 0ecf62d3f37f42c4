"""Stripe side of a payment: authorize, capture, void. Each call carries an idempotency key derived
from the transaction and the step, so a retried activity can never charge twice."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast
from urllib.parse import quote

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from payments.activities.heartbeat import heartbeating
from payments.activities.stripe_errors import final_or_transient, stripe_details
from payments.schema.messages import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    PaymentIntentState,
    ReauthorizeRequest,
    RedirectToUrl,
    StripeCapture,
    VoidRequest,
)

# The capture's charge with its balance transaction: Stripe's fee comes back with the capture.
CHARGE_FEE = "latest_charge.balance_transaction"


def _card_fields(card_token: str) -> dict[str, Any]:
    """`pm_…` is a PaymentMethod; a legacy `tok_…` card token becomes one through payment_method_data."""
    if card_token.startswith("tok_"):
        return {"payment_method_data": {"type": "card", "card": {"token": card_token}}}
    return {"payment_method": card_token}


# A PaymentIntent as Stripe's JSON: the SDK's StripeObject tree of each answer (a third of the
# Stripe calls' CPU) would be built only to read a few fields of it.
Intent = dict[str, Any]


def _expanded(value: Any) -> dict[str, Any]:
    """An expanded object, or nothing (an id: not expanded; null: none)."""
    return value if isinstance(value, dict) else {}


def _card(intent: Intent) -> tuple[str | None, str | None]:
    card = _expanded(_expanded(intent.get("payment_method")).get("card"))
    return card.get("brand"), card.get("last4")


def _stripe_fee(intent: Intent) -> int | None:
    """Stripe's fee on the captured charge, from its balance transaction when it was expanded."""
    txn = _expanded(_expanded(intent.get("latest_charge")).get("balance_transaction"))
    return int(txn["fee"]) if "fee" in txn else None


def _redirect(intent: Intent) -> RedirectToUrl | None:
    """Where the customer authenticates (3-D Secure), when Stripe asks for a redirect."""
    action = _expanded(intent.get("next_action"))
    target = _expanded(action.get("redirect_to_url"))
    if action.get("type") != "redirect_to_url" or not target:
        return None
    return RedirectToUrl(str(target["url"]), target.get("return_url"))


def _path(intent_id: str, action: str = "") -> str:
    return f"/v1/payment_intents/{quote(intent_id, safe='')}" + (f"/{action}" if action else "")


class StripePayments:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._stripe = client

    async def _intent(
        self, method: str, path: str, params: dict[str, Any], idempotency_key: str | None = None
    ) -> Intent:
        """A PaymentIntent call through the SDK's requestor (its key, its errors as StripeError),
        answered as Stripe's JSON, heartbeating while it waits."""
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        response = await heartbeating(self._stripe.raw_request_async(method, path, **params, **options))
        return cast(Intent, response.data)

    @activity.defn
    async def authorize_payment(self, request: AuthorizeRequest) -> Authorization:
        """A manual-capture PaymentIntent, confirmed at once. A decline is final (CardDeclined)."""
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency,
            "capture_method": "manual",
            "confirm": True,
            "payment_method_types": ["card"],
            "metadata": {"tx_id": request.tx_id, "merchant_id": request.merchant_id},
            "expand": ["payment_method"],
            **_card_fields(request.card_token),
            **({"return_url": request.return_url} if request.return_url else {}),
            **({"customer": request.customer_id} if request.customer_id else {}),
            **({"setup_future_usage": "off_session"} if request.save_card else {}),
        }
        return await self._authorization(
            self._intent("post", "/v1/payment_intents", params, f"{request.tx_id}:authorize")
        )

    @activity.defn
    async def reauthorize_payment(self, request: ReauthorizeRequest) -> Authorization:
        """Confirm a declined payment's PaymentIntent (requires_payment_method) again with another
        card; attempt n's idempotency key is `{tx_id}:authorize:{n}`. A saved card pays only on its
        Customer, so the PaymentIntent is given the Customer first (confirm takes none)."""
        card = request.card
        if card.customer_id is not None:
            try:
                await heartbeating(
                    self._stripe.v1.payment_intents.update_async(
                        request.payment_intent_id,
                        params={"customer": card.customer_id},
                        options={"idempotency_key": f"{request.tx_id}:customer:{request.attempt}"},
                    )
                )
            except stripe.StripeError as exc:
                raise final_or_transient(exc) from exc
        params: dict[str, Any] = {
            "expand": ["payment_method"],
            **_card_fields(card.card_token),
            **({"return_url": request.return_url} if request.return_url else {}),
        }
        return await self._authorization(
            self._intent(
                "post",
                _path(request.payment_intent_id, "confirm"),
                params,
                f"{request.tx_id}:authorize:{request.attempt}",
            )
        )

    async def _authorization(self, call: Awaitable[Intent]) -> Authorization:
        """Stripe's answer to a confirmation: authorized, 3-D Secure, or a decline (CardDeclined)."""
        try:
            intent = await call
        except stripe.CardError as exc:
            declined_intent = exc.error.payment_intent if exc.error else None
            raise ApplicationError(
                exc.user_message or "The card was declined.",
                stripe_details(exc)
                | {
                    "payment_intent_id": declined_intent.id if declined_intent else None,
                    "code": (exc.error.decline_code if exc.error else None) or exc.code,
                },
                type="CardDeclined",
                non_retryable=True,
            ) from exc
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        brand, last4 = _card(intent)
        status = {"requires_capture": "authorized", "requires_action": "requires_action"}.get(intent["status"])
        if status is None:
            raise ApplicationError(
                f"unexpected PaymentIntent status {intent['status']}", type="UnexpectedStripeState", non_retryable=True
            )
        if status == "authorized":
            return Authorization(intent["id"], status, brand, last4)
        return Authorization(
            intent["id"], status, brand, last4, client_secret=intent.get("client_secret"), redirect=_redirect(intent)
        )

    @activity.defn
    async def capture_payment(self, request: CaptureRequest) -> int:
        """Capture (partial allowed); returns the amount Stripe received."""
        return (await self._capture(request, [])).amount

    @activity.defn
    async def capture_payment_with_fee(self, request: CaptureRequest) -> StripeCapture:
        """Capture, with Stripe's fee read off the charge's balance transaction in the same call."""
        return await self._capture(request, [CHARGE_FEE])

    async def _capture(self, request: CaptureRequest, expand: list[str]) -> StripeCapture:
        params: dict[str, Any] = {"amount_to_capture": request.amount} | ({"expand": expand} if expand else {})
        try:
            intent = await self._intent(
                "post", _path(request.payment_intent_id, "capture"), params, f"{request.tx_id}:capture"
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "payment_intent_unexpected_state":
                raise final_or_transient(exc) from exc
            intent = await self._already(request.payment_intent_id, "succeeded", exc, expand)
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        return StripeCapture(int(intent["amount_received"]), _stripe_fee(intent))

    @activity.defn
    async def void_payment(self, request: VoidRequest) -> None:
        try:
            await self._intent(
                "post",
                _path(request.payment_intent_id, "cancel"),
                {"cancellation_reason": request.reason},
                f"{request.tx_id}:cancel",
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "payment_intent_unexpected_state":
                await self._already(request.payment_intent_id, "canceled", exc)
                return
            raise final_or_transient(exc) from exc
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc

    @activity.defn
    async def read_payment_intent(self, payment_intent_id: str) -> PaymentIntentState:
        """What Stripe says of the PaymentIntent now: the workflow acts on this, not on a webhook."""
        try:
            intent = await self._intent("get", _path(payment_intent_id), {})
        except stripe.StripeError as exc:
            raise final_or_transient(exc) from exc
        error = _expanded(intent.get("last_payment_error"))
        return PaymentIntentState(
            intent["id"],
            intent["status"],
            error.get("code"),
            error.get("message"),
            amount_received=int(intent.get("amount_received") or 0),
        )

    async def _already(
        self, intent_id: str, wanted: str, exc: stripe.StripeError, expand: list[str] | None = None
    ) -> Intent:
        """Stripe refused the move: fine if the PaymentIntent is already where we wanted it."""
        intent = await self._intent("get", _path(intent_id), {"expand": expand} if expand else {})
        if intent["status"] == wanted:
            return intent
        raise ApplicationError(
            f"PaymentIntent {intent_id} is {intent['status']}, not {wanted}",
            {"stripe_status": intent["status"]},
            type="StripeStateConflict",
            non_retryable=True,
        ) from exc
