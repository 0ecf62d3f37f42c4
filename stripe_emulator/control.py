"""The control API (outside `/v1`, JSON, local only): faults, out-of-band mutations, 3-D Secure
outcomes, webhook endpoints, counters and reset, for tests and chaos runs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stripe_emulator import accounts, disputes, payment_intents, refunds, setup_intents
from stripe_emulator.emulator import new_balance_transaction, new_event
from stripe_emulator.faults import Fault
from stripe_emulator.objects import build, new_id
from stripe_emulator.webhooks import Endpoint
from stripe_emulator.wire import StripeError

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator

PREFIX = "/_emulator"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def control_routes(emu: Emulator) -> list[BaseRoute]:
    async def reset(_: Request) -> Response:
        emu.reset()
        return JSONResponse({"reset": True})

    async def add_fault(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        fields = {f.name for f in dataclasses.fields(Fault)} - {"id", "hits"}
        try:
            fault = emu.faults.add(Fault(**{k: v for k, v in body.items() if k in fields}))
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return JSONResponse(fault.as_dict(), status_code=201)

    async def list_faults(_: Request) -> Response:
        return JSONResponse({"data": [f.as_dict() for f in emu.faults.all()]})

    async def remove_fault(request: Request) -> Response:
        if not emu.faults.remove(request.path_params["id"]):
            return _error(404, "no such fault")
        return JSONResponse({"deleted": True})

    async def seed_payment_intents(request: Request) -> Response:
        """Bulk-load captured PaymentIntents as history (no webhooks), spread evenly over
        [created_from, created_to): for reconciliation benchmarks. `"charges": true` gives each its
        captured charge and balance transaction (Stripe's fee kept), as a capture would. A big history comes in
        batches: `first` numbers this batch's tx ids on from there (`tx_prefix` + number).
        `"events": true` also records each one's `payment_intent.succeeded`, at its creation time
        (what reconciliation reads changes from)."""
        body: dict[str, Any] = await request.json()
        count, start, end = int(body["count"]), int(body["created_from"]), int(body["created_to"])
        first = int(body.get("first", 0))
        intents = [
            build(
                "payment_intent",
                "pi",
                amount=body["amount"],
                amount_received=body["amount"],
                amount_capturable=0,
                currency=body["currency"],
                capture_method="manual",
                status="succeeded",
                metadata={"tx_id": f"{body['tx_prefix']}{first + i}"},
                created=start + (end - start) * i // max(count, 1),
            )
            for i in range(count)
        ]
        fees = _settle(intents) if body.get("charges") else []
        emu.store.put_many(intents)
        if body.get("events"):
            events = [new_event("payment_intent.succeeded", i) | {"created": i["created"]} for i in intents]
            emu.store.put_many(events)
        return JSONResponse({"ids": [intent["id"] for intent in intents], "fees": fees}, status_code=201)

    def _settle(intents: list[dict[str, Any]]) -> list[int]:
        """Each seeded PaymentIntent's captured charge and its balance transaction, with Stripe's
        fee: what the three-way match reads. Returns the fees."""
        charges, txns = [], []
        for intent in intents:
            amount, currency = intent["amount"], intent["currency"]
            charge = build(
                "charge",
                "ch",
                amount=amount,
                amount_captured=amount,
                captured=True,
                paid=True,
                status="succeeded",
                currency=currency,
                metadata=dict(intent["metadata"]),
                payment_intent=intent["id"],
                created=intent["created"],
            )
            txn = new_balance_transaction("charge", charge["id"], amount, currency, emu.fees.on(amount))
            txn.update(created=intent["created"], available_on=intent["created"])
            charge["balance_transaction"], intent["latest_charge"] = txn["id"], charge["id"]
            charges.append(charge)
            txns.append(txn)
        emu.store.put_many(charges)
        emu.book_balance_transactions(txns)
        return [txn["fee"] for txn in txns]

    async def seed_accounts(request: Request) -> Response:
        """Bulk-load connected accounts as history (no events), one per merchant id: for payout
        benchmarks over thousands of merchants."""
        body: dict[str, Any] = await request.json()
        connected = [
            accounts.new_account({"default_currency": body["currency"], "metadata": {"merchant_id": merchant_id}})
            for merchant_id in body["merchant_ids"]
        ]
        emu.store.put_many(connected)
        return JSONResponse({"ids": [account["id"] for account in connected]}, status_code=201)

    async def seed_topup(request: Request) -> Response:
        """Add funds to the platform's available balance, as a Stripe top-up does: what seeded
        history (which has no charges) would have earned, so transfers out of it can be made."""
        body: dict[str, Any] = await request.json()
        txn = emu.balance_transaction("topup", new_id("tu"), int(body["amount"]), body["currency"])
        return JSONResponse(txn, status_code=201)

    async def get_object(request: Request) -> Response:
        obj = emu.store.get(request.path_params["id"])
        return JSONResponse(obj) if obj else _error(404, "no such object")

    async def mutate_object(request: Request) -> Response:
        """Change fields silently (no event, no webhook): Stripe and our books now disagree. With
        `?event=TYPE`, Stripe announced the change: the event is recorded and listable, and its
        webhook lost unless `&deliver=true` (what a change Stripe makes on its own, like a refund
        failing days later, looks like to a platform that missed the webhook)."""
        obj = emu.store.get(request.path_params["id"])
        if obj is None:
            return _error(404, "no such object")
        changes: dict[str, Any] = await request.json()
        if {"id", "object"} & changes.keys():
            return _error(400, "id and object cannot be changed")
        previous = {field: obj.get(field) for field in changes}
        obj.update(changes)
        emu.store.put(obj)
        if event_type := request.query_params.get("event"):
            emu.emit(event_type, obj, previous, deliver=request.query_params.get("deliver") == "true")
        return JSONResponse(obj)

    async def delete_object(request: Request) -> Response:
        """Out-of-band removal, as if Stripe never had the object: its events go with it (Stripe
        never lists an event about an object it does not have)."""
        object_id = request.path_params["id"]
        if not emu.store.delete(object_id):
            return _error(404, "no such object")
        for event_id in list(emu.store.ids_of("event")):
            event = emu.store.peek(event_id)
            if event is not None and event["data"]["object"].get("id") == object_id:
                emu.store.delete(event_id)
        return JSONResponse({"deleted": True})

    async def complete_action(request: Request) -> Response:
        outcome = (await request.json()).get("outcome", "succeed")
        if outcome not in ("succeed", "fail"):
            return _error(400, "outcome must be 'succeed' or 'fail'")
        try:
            intents = setup_intents if request.url.path.startswith(f"{PREFIX}/setup_intents/") else payment_intents
            return JSONResponse(intents.complete_action(emu, request.path_params["id"], outcome == "succeed"))
        except StripeError as exc:
            return exc.response()

    async def close_dispute(request: Request) -> Response:
        """The bank decides: {"outcome": "won"|"lost"}; `"webhooks": false` loses its webhooks;
        `"reinstate": false` leaves a won amount to `/reinstate` (Stripe's funds_reinstated comes later)."""
        body: dict[str, Any] = await request.json()
        if body.get("outcome") not in ("won", "lost"):
            return _error(400, "outcome must be 'won' or 'lost'")
        won, deliver, now = (
            body["outcome"] == "won",
            bool(body.get("webhooks", True)),
            bool(body.get("reinstate", True)),
        )
        try:
            return JSONResponse(disputes.decide(emu, request.path_params["id"], won, deliver, now))
        except StripeError as exc:
            return exc.response()

    async def move_dispute_funds(request: Request) -> Response:
        """An inquiry escalates to a chargeback (`/escalate`: funds withdrawn with the dispute fee),
        or a won dispute's amount comes back (`/reinstate`)."""
        dispute_id = request.path_params["id"]
        try:
            if request.url.path.endswith("/escalate"):
                return JSONResponse(disputes.escalate(emu, dispute_id))
            return JSONResponse(disputes.reinstate(emu, dispute_id))
        except StripeError as exc:
            return exc.response()

    async def set_fees(request: Request) -> Response:
        """Stripe's fees from now on: {"bps", "fixed", "dispute"} (minor units), each optional."""
        body: dict[str, Any] = await request.json()
        for name in ("bps", "fixed", "dispute"):
            if name in body:
                if not isinstance(body[name], int) or body[name] < 0:
                    return _error(400, f"{name} must be a non-negative integer")
                setattr(emu.fees, name, body[name])
        return JSONResponse(dataclasses.asdict(emu.fees))

    async def settle_refund(request: Request) -> Response:
        """The card network's word on a refund: `succeed` a pending one, or `fail` one later
        ({"failure_reason": ...}, default expired_or_canceled_card); `"webhooks": false` loses its events."""
        body: dict[str, Any] = await request.json() if await request.body() else {}
        deliver, refund_id = bool(body.get("webhooks", True)), request.path_params["id"]
        try:
            if request.url.path.endswith("/succeed"):
                return JSONResponse(refunds.succeed(emu, refund_id, deliver))
            reason = body.get("failure_reason", "expired_or_canceled_card")
            return JSONResponse(refunds.fail(emu, refund_id, reason, deliver))
        except StripeError as exc:
            return exc.response()

    async def add_webhook_endpoint(request: Request) -> Response:
        body = await request.json()
        if not body.get("url") or not body.get("secret"):
            return _error(400, "url and secret are required")
        events = tuple(body.get("enabled_events") or ("*",))
        emu.webhooks.endpoints.append(Endpoint(body["url"], body["secret"], events))
        return JSONResponse({"url": body["url"]}, status_code=201)

    async def webhook_deliveries(_: Request) -> Response:
        return JSONResponse({"data": [dataclasses.asdict(d) for d in emu.webhooks.deliveries]})

    async def counters(_: Request) -> Response:
        return JSONResponse({name: dict(keys) for name, keys in emu.store.counters.items()})

    return [
        Route(f"{PREFIX}/reset", reset, methods=["POST"]),
        Route(f"{PREFIX}/faults", add_fault, methods=["POST"]),
        Route(f"{PREFIX}/faults", list_faults, methods=["GET"]),
        Route(f"{PREFIX}/faults/{{id}}", remove_fault, methods=["DELETE"]),
        Route(f"{PREFIX}/seed/payment_intents", seed_payment_intents, methods=["POST"]),
        Route(f"{PREFIX}/seed/accounts", seed_accounts, methods=["POST"]),
        Route(f"{PREFIX}/seed/topup", seed_topup, methods=["POST"]),
        Route(f"{PREFIX}/objects/{{id}}", get_object, methods=["GET"]),
        Route(f"{PREFIX}/objects/{{id}}", mutate_object, methods=["POST"]),
        Route(f"{PREFIX}/objects/{{id}}", delete_object, methods=["DELETE"]),
        Route(f"{PREFIX}/payment_intents/{{id}}/complete_action", complete_action, methods=["POST"]),
        Route(f"{PREFIX}/setup_intents/{{id}}/complete_action", complete_action, methods=["POST"]),
        Route(f"{PREFIX}/disputes/{{id}}/close", close_dispute, methods=["POST"]),
        Route(f"{PREFIX}/disputes/{{id}}/escalate", move_dispute_funds, methods=["POST"]),
        Route(f"{PREFIX}/disputes/{{id}}/reinstate", move_dispute_funds, methods=["POST"]),
        Route(f"{PREFIX}/fees", set_fees, methods=["POST"]),
        Route(f"{PREFIX}/refunds/{{id}}/succeed", settle_refund, methods=["POST"]),
        Route(f"{PREFIX}/refunds/{{id}}/fail", settle_refund, methods=["POST"]),
        Route(f"{PREFIX}/webhook_endpoints", add_webhook_endpoint, methods=["POST"]),
        Route(f"{PREFIX}/webhook_deliveries", webhook_deliveries, methods=["GET"]),
        Route(f"{PREFIX}/counters", counters, methods=["GET"]),
    ]
