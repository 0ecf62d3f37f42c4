"""PaymentIntents and the Charges they create, with Stripe's state machine:
requires_payment_method -> requires_confirmation -> requires_action -> requires_capture ->
succeeded | canceled. Illegal moves answer `payment_intent_unexpected_state`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from stripe_emulator import disputes
from stripe_emulator.cards import TestCard
from stripe_emulator.emulator import Emulator, current_origin
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.payment_methods import asks_to_authenticate, resolve, set_up, to_confirm
from stripe_emulator.store import Obj
from stripe_emulator.wire import StripeError, currency, invalid, positive_int, unexpected_state

CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
CONFIRMABLE = ("requires_payment_method", "requires_confirmation")


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _charge(emu: Emulator, intent: Obj, method: Obj, card: TestCard) -> Obj:
    charge = build(
        "charge",
        "ch",
        amount=intent["amount"],
        amount_captured=0,
        amount_refunded=0,
        balance_transaction=None,
        captured=False,
        currency=intent["currency"],
        description=intent["description"],
        metadata=dict(intent["metadata"]),
        payment_intent=intent["id"],
        payment_method=method["id"],
        refunded=False,
        transfer_group=intent["transfer_group"],
        customer=intent["customer"],
        receipt_url=None,
        failure_balance_transaction=None,
    )
    charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
    charge["payment_method_details"]["card"].update(brand=card.brand, last4=card.last4, network=card.brand)
    declined = card.decline
    charge.update(
        status="failed" if declined else "succeeded",
        paid=not declined,
        failure_code=declined.code if declined else None,
        failure_message=declined.message if declined else None,
        outcome={
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "declined_by_network" if declined else "approved_by_network",
            "reason": declined.decline_code if declined else None,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline."
            if declined
            else "Payment complete.",
            "type": "issuer_declined" if declined else "authorized",
        },
    )
    return emu.store.put(charge)


def _capture_charge(emu: Emulator, intent: Obj, charge: Obj, amount: int) -> None:
    fee = emu.fees.on(amount)
    txn = emu.balance_transaction("charge", charge["id"], amount, charge["currency"], fee)
    charge.update(captured=True, amount_captured=amount, balance_transaction=txn["id"])
    emu.store.put(charge)
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
    emu.store.count("payment_intents.capture", intent["id"])


def authentication(intent: Obj, return_url: str | None, kind: str = "payment_intent") -> Obj:
    """Where the customer authenticates: with a return_url, the emulator's 3-D Secure page, which
    sends them back there; without one, Stripe.js's own modal (`use_stripe_sdk`)."""
    if not return_url:
        return {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
    query = urlencode({kind: intent["id"], f"{kind}_client_secret": intent["client_secret"]})
    url = f"{current_origin.get()}/3d_secure_2/hosted?{query}"
    return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": return_url}}


def _authorize(emu: Emulator, intent: Obj, method_name: str, return_url: str | None) -> Obj:
    """Confirmation: the card decides between declined, requires_action and authorized."""
    method, card = resolve(emu, method_name)
    if method["customer"] not in (None, intent["customer"]):
        raise invalid(
            "The provided PaymentMethod belongs to a Customer other than the one on this PaymentIntent.",
            param="payment_method",
        )
    intent.update(payment_method=method["id"], last_payment_error=None, next_action=None)
    emu.store.count("payment_intents.confirm", intent["id"])
    if asks_to_authenticate(method, card):
        intent.update(status="requires_action", next_action=authentication(intent, return_url))
        emu.store.put(intent)
        emu.emit("payment_intent.requires_action", intent)
        return intent
    return settle_authorization(emu, intent, method, card)


def settle_authorization(emu: Emulator, intent: Obj, method: Obj, card: TestCard) -> Obj:
    """The issuer's answer: a charge (failed or succeeded) and the intent's next status."""
    charge = _charge(emu, intent, method, card)
    intent["latest_charge"] = charge["id"]
    if card.decline:
        error = {
            "type": "card_error",
            "code": card.decline.code,
            "decline_code": card.decline.decline_code,
            "message": card.decline.message,
            "charge": charge["id"],
            "payment_method": method,
        }
        intent.update(status="requires_payment_method", last_payment_error=error, next_action=None)
        emu.store.put(intent)
        emu.emit("charge.failed", charge)
        emu.emit("payment_intent.payment_failed", intent)
        raise StripeError(
            402,
            "card_error",
            card.decline.message,
            card.decline.code,
            decline_code=card.decline.decline_code,
            charge=charge["id"],
            payment_intent=intent,
            payment_method=method,
        )
    emu.emit("charge.succeeded", charge)
    if intent["setup_future_usage"] and intent["customer"]:
        set_up(emu, method, intent["customer"])  # Stripe attaches the card once the payment authorizes
    if intent["capture_method"] == "manual":
        intent.update(status="requires_capture", amount_capturable=intent["amount"], next_action=None)
        emu.store.put(intent)
        emu.emit("payment_intent.amount_capturable_updated", intent)
    else:
        _capture_charge(emu, intent, charge, intent["amount"])
        emu.store.put(intent)
        emu.emit("charge.captured", charge)
        emu.emit("payment_intent.succeeded", intent)
        disputes.open_if_disputed(emu, charge)
    return intent


def _customer(emu: Emulator, params: dict[str, Any]) -> str | None:
    return emu.find("customer", params["customer"], "customer")["id"] if params.get("customer") else None


def _setup_future_usage(params: dict[str, Any]) -> str | None:
    usage = params.get("setup_future_usage") or None
    if usage not in (None, "off_session", "on_session"):
        raise invalid(f"Invalid setup_future_usage: {usage}", "parameter_invalid_string", "setup_future_usage")
    if usage and not params.get("customer"):
        raise invalid("A Customer is required to save a PaymentMethod for future use.", param="customer")
    return usage


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    capture_method = params.get("capture_method", "automatic")
    if capture_method not in ("automatic", "automatic_async", "manual"):
        raise invalid(
            f"Invalid capture_method: {capture_method}",
            "parameter_invalid_string",
            "capture_method",
        )
    intent = build(
        "payment_intent",
        "pi",
        amount=positive_int(params, "amount"),
        amount_capturable=0,
        amount_received=0,
        currency=currency(params),
        capture_method="manual" if capture_method == "manual" else "automatic",
        confirmation_method=params.get("confirmation_method", "automatic"),
        description=params.get("description"),
        metadata=params.get("metadata", {}),
        transfer_group=params.get("transfer_group"),
        payment_method=None,
        payment_method_types=params.get("payment_method_types", ["card"]),
        status="requires_payment_method",
        canceled_at=None,
        cancellation_reason=None,
        last_payment_error=None,
        latest_charge=None,
        next_action=None,
        processing=None,
        transfer_data=None,
        customer=_customer(emu, params),
        setup_future_usage=_setup_future_usage(params),
        receipt_email=params.get("receipt_email"),
    )
    intent["client_secret"] = f"{intent['id']}_secret_{intent['id'][3:]}"
    method_name = _method_name(params)
    if method_name:
        method = resolve(emu, method_name)[0]
        intent.update(payment_method=method["id"], status="requires_confirmation")
    emu.store.count("payment_intents.create", intent["id"])
    emu.store.put(intent)
    emu.emit("payment_intent.created", intent)
    if _truthy(params.get("confirm", "false")):
        return _authorize(emu, intent, to_confirm(intent["payment_method"]), params.get("return_url"))
    return intent


def _method_name(params: dict[str, Any]) -> str | None:
    """`payment_method=pm_…`, or a card token wrapped as `payment_method_data[card][token]=tok_…`."""
    return params.get("payment_method") or params.get("payment_method_data", {}).get("card", {}).get("token")


async def confirm(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    """Confirm, or confirm again after a decline (requires_payment_method) with another card."""
    intent = emu.find("payment_intent", path["id"], "intent")
    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state("confirm", intent)
    method = to_confirm(_method_name(params) or intent["payment_method"])
    return _authorize(emu, intent, method, params.get("return_url"))


async def capture(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("payment_intent", path["id"], "intent")
    if intent["status"] != "requires_capture":
        raise unexpected_state("capture", intent)
    amount = positive_int(params, "amount_to_capture", intent["amount_capturable"])
    if amount > intent["amount_capturable"]:
        raise invalid(
            f"The amount to capture ({amount}) must be less than or equal to the capturable amount "
            f"({intent['amount_capturable']}).",
            "amount_too_large",
            "amount_to_capture",
        )
    if "metadata" in params:
        intent["metadata"].update(params["metadata"])
    charge = emu.find("charge", intent["latest_charge"])
    _capture_charge(emu, intent, charge, amount)
    emu.store.put(intent)
    emu.emit("charge.captured", charge)
    emu.emit("payment_intent.succeeded", intent)
    disputes.open_if_disputed(emu, charge)
    return intent


async def cancel(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("payment_intent", path["id"], "intent")
    if intent["status"] not in CANCELABLE:
        raise unexpected_state("cancel", intent)
    reason = params.get("cancellation_reason")
    reasons = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
    if reason is not None and reason not in reasons:
        raise invalid(
            f"Invalid cancellation_reason: {reason}",
            "parameter_invalid_string",
            "cancellation_reason",
        )
    intent.update(status="canceled", cancellation_reason=reason, amount_capturable=0, next_action=None)
    intent["canceled_at"] = emu.now()
    emu.store.count("payment_intents.cancel", intent["id"])
    emu.store.put(intent)
    emu.emit("payment_intent.canceled", intent)
    return intent


async def update(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("payment_intent", path["id"], "intent")
    if "metadata" in params:
        intent["metadata"].update(params["metadata"])
    if params.get("customer"):  # Stripe sets it while the PaymentIntent is not yet confirmed or settled
        if intent["status"] not in CONFIRMABLE and intent["customer"] != params["customer"]:
            raise unexpected_state("update the customer of", intent)
        intent["customer"] = _customer(emu, params)
    for field in ("description", "transfer_group", "receipt_email"):
        if field in params:
            intent[field] = params[field] or None
    emu.store.put(intent)
    emu.emit("payment_intent.updated", intent)
    return intent


def complete_action(emu: Emulator, intent_id: str, succeed: bool) -> Obj:
    """The customer finished (or failed) 3-D Secure: what the control API's button does."""
    intent = emu.find("payment_intent", intent_id, "intent")
    if intent["status"] != "requires_action":
        raise unexpected_state("complete the action on", intent)
    method, card = resolve(emu, intent["payment_method"])
    if succeed:
        return settle_authorization(emu, intent, method, card)
    intent.update(
        status="requires_payment_method",
        next_action=None,
        last_payment_error={
            "type": "card_error",
            "code": "payment_intent_authentication_failure",
            "message": "The provided PaymentMethod has failed authentication.",
            "payment_method": method,
        },
    )
    emu.store.put(intent)
    emu.emit("payment_intent.payment_failed", intent)
    return intent


async def retrieve(emu: Emulator, _: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("payment_intent", path["id"], "intent")
    emu.store.count("payment_intents.retrieve", path["id"])  # tests check what a read costs at Stripe
    return intent


list_all = lister("payment_intent", "/v1/payment_intents")
retrieve_charge = retriever("charge", "charge")
list_charges = lister("charge", "/v1/charges", "payment_intent")
