"""SetupIntents: saving a card on a Customer for later payments, with 3-D Secure when the bank asks
(requires_payment_method -> requires_confirmation -> requires_action -> succeeded | canceled)."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import lister, retriever
from stripe_emulator.objects import build
from stripe_emulator.payment_intents import authentication
from stripe_emulator.payment_methods import resolve, set_up, to_confirm
from stripe_emulator.store import Obj
from stripe_emulator.wire import StripeError, invalid

CONFIRMABLE = ("requires_payment_method", "requires_confirmation")


def _unexpected(action: str, intent: Obj) -> StripeError:
    return invalid(
        f"You cannot {action} this SetupIntent because it has a status of {intent['status']}.",
        "setup_intent_unexpected_state",
        setup_intent=intent,
    )


def _confirm(emu: Emulator, intent: Obj, method_name: str, return_url: str | None) -> Obj:
    method, card = resolve(emu, method_name)
    if method["customer"] not in (None, intent["customer"]):
        raise invalid("The provided PaymentMethod belongs to another Customer.", param="payment_method")
    intent.update(payment_method=method["id"], last_setup_error=None, next_action=None)
    if card.decline:
        intent.update(
            status="requires_payment_method",
            last_setup_error={
                "type": "card_error",
                "code": card.decline.code,
                "decline_code": card.decline.decline_code,
                "message": card.decline.message,
                "payment_method": method,
            },
        )
        emu.store.put(intent)
        emu.emit("setup_intent.setup_failed", intent)
        raise StripeError(
            402,
            "card_error",
            card.decline.message,
            card.decline.code,
            decline_code=card.decline.decline_code,
            setup_intent=intent,
            payment_method=method,
        )
    if card.setup_requires_action:
        intent.update(status="requires_action", next_action=authentication(intent, return_url, "setup_intent"))
        emu.store.put(intent)
        emu.emit("setup_intent.requires_action", intent)
        return intent
    return _succeed(emu, intent, method)


def _succeed(emu: Emulator, intent: Obj, method: Obj) -> Obj:
    if intent["customer"]:
        set_up(emu, method, intent["customer"])
    intent.update(status="succeeded", next_action=None)
    emu.store.put(intent)
    emu.emit("setup_intent.succeeded", intent)
    return intent


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    customer = params.get("customer")
    if customer:
        emu.find("customer", customer, "customer")
    usage = params.get("usage", "off_session")
    if usage not in ("off_session", "on_session"):
        raise invalid(f"Invalid usage: {usage}", "parameter_invalid_string", "usage")
    intent = build(
        "setup_intent",
        "seti",
        customer=customer,
        description=params.get("description"),
        metadata=params.get("metadata", {}),
        usage=usage,
        status="requires_payment_method",
        last_setup_error=None,
        next_action=None,
        payment_method=None,
        payment_method_configuration_details=None,
    )
    intent["client_secret"] = f"{intent['id']}_secret_{intent['id'][5:]}"
    if params.get("payment_method"):
        intent.update(payment_method=resolve(emu, params["payment_method"])[0]["id"], status="requires_confirmation")
    emu.store.put(intent)
    emu.emit("setup_intent.created", intent)
    if str(params.get("confirm", "false")).lower() == "true":
        return _confirm(emu, intent, to_confirm(intent["payment_method"]), params.get("return_url"))
    return intent


async def confirm(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("setup_intent", path["id"], "intent")
    if intent["status"] not in CONFIRMABLE:
        raise _unexpected("confirm", intent)
    method = to_confirm(params.get("payment_method") or intent["payment_method"])
    return _confirm(emu, intent, method, params.get("return_url"))


async def cancel(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    intent = emu.find("setup_intent", path["id"], "intent")
    if intent["status"] not in (*CONFIRMABLE, "requires_action"):
        raise _unexpected("cancel", intent)
    intent.update(status="canceled", cancellation_reason=params.get("cancellation_reason"), next_action=None)
    emu.store.put(intent)
    emu.emit("setup_intent.canceled", intent)
    return intent


def complete_action(emu: Emulator, intent_id: str, succeed: bool) -> Obj:
    """The customer finished (or failed) 3-D Secure while saving the card."""
    intent = emu.find("setup_intent", intent_id, "intent")
    if intent["status"] != "requires_action":
        raise _unexpected("complete the action on", intent)
    method = emu.find("payment_method", intent["payment_method"], "payment_method")
    if succeed:
        return _succeed(emu, intent, method)
    intent.update(
        status="requires_payment_method",
        next_action=None,
        last_setup_error={
            "type": "card_error",
            "code": "setup_intent_authentication_failure",
            "message": "The latest attempt to set up the payment method has failed because authentication failed.",
            "payment_method": method,
        },
    )
    emu.store.put(intent)
    emu.emit("setup_intent.setup_failed", intent)
    return intent


retrieve = retriever("setup_intent", "intent")
list_all = lister("setup_intent", "/v1/setup_intents", "customer")
