"""Customers and the cards kept on them: a PaymentMethod attached to a Customer can pay again
later; detaching it ends that. `invoice_settings.default_payment_method` names the default card."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import list_objects, retriever
from stripe_emulator.objects import build
from stripe_emulator.store import Obj
from stripe_emulator.wire import invalid, required


async def create(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    customer = build(
        "customer",
        "cus",
        email=params.get("email"),
        name=params.get("name"),
        description=params.get("description"),
        metadata=params.get("metadata", {}),
        discount=None,
        shipping=None,
    )
    emu.store.put(customer)
    emu.emit("customer.created", customer)
    return customer


async def update(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    customer = emu.find("customer", path["id"])
    if "metadata" in params:
        customer["metadata"].update(params["metadata"])
    default = params.get("invoice_settings", {}).get("default_payment_method")
    if default is not None:
        if (
            default
            and emu.find("payment_method", default, "invoice_settings[default_payment_method]").get("customer")
            != customer["id"]
        ):
            raise invalid(
                f"No such PaymentMethod: '{default}'; It does not belong to this customer.",
                "resource_missing",
                "invoice_settings[default_payment_method]",
            )
        customer["invoice_settings"]["default_payment_method"] = default or None
    emu.store.put(customer)
    emu.emit("customer.updated", customer)
    return customer


def attach_to(emu: Emulator, method: Obj, customer_id: str) -> Obj:
    """Keep the card on the customer (a SetupIntent or a payment with setup_future_usage does this)."""
    if method["customer"] not in (None, customer_id):
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            "resource_already_exists",
            "payment_method",
        )
    if method["customer"] != customer_id:
        method["customer"] = customer_id
        emu.store.put(method)
        emu.emit("payment_method.attached", method)
    return method


async def attach(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    customer = emu.find("customer", required(params, "customer"), "customer")
    return attach_to(emu, emu.find("payment_method", path["id"], "payment_method"), customer["id"])


async def detach(emu: Emulator, _: dict[str, Any], path: dict[str, str]) -> Obj:
    method = emu.find("payment_method", path["id"], "payment_method")
    if method["customer"] is None:
        raise invalid("The payment method you provided is not attached to a customer so detachment is impossible.")
    customer = emu.store.get(method["customer"])
    if customer and customer["invoice_settings"]["default_payment_method"] == method["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
        emu.store.put(customer)
    method["customer"] = None
    emu.store.put(method)
    emu.emit("payment_method.detached", method)
    return method


async def list_payment_methods(emu: Emulator, params: dict[str, Any], path: dict[str, str]) -> Obj:
    customer = emu.find("customer", path["id"], "customer")
    url = f"/v1/customers/{customer['id']}/payment_methods"
    return list_objects(emu.store, "payment_method", url, params, lambda m: m["customer"] == customer["id"])


retrieve = retriever("customer")
