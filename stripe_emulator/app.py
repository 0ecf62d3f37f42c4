"""The emulator's HTTP application: Stripe's `/v1` API, the browser side (Stripe.js, the card field
and the 3-D Secure page) and a control API under `/_emulator`.

Every `/v1` call goes: API key check -> injected fault (if any) -> idempotency -> the resource
handler -> `expand[]`. The handlers live in one module per resource."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from stripe_emulator import (
    accounts,
    browser,
    customers,
    disputes,
    events,
    payment_intents,
    payment_methods,
    refunds,
    setup_intents,
    transfers,
)
from stripe_emulator.control import control_routes
from stripe_emulator.emulator import Emulator, current_origin, current_request
from stripe_emulator.expand import expand
from stripe_emulator.faults import Fault
from stripe_emulator.listing import Handler
from stripe_emulator.wire import StripeError, StripeJSON, parse_form

# What a publishable key (the browser's, pk_test_…) may call: nothing else.
PUBLISHABLE = {("POST", "/v1/payment_methods")}


def _api_key(request: Request, publishable: bool) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.startswith(("sk_test_", "rk_test_", "pk_test_")):
        raise StripeError(
            401,
            "invalid_request_error",
            "You did not provide a valid API key. Provide your test secret key (sk_test_...) "
            "as a Bearer token in the Authorization header.",
        )
    if key.startswith("pk_") and not publishable:
        raise StripeError(
            401,
            "invalid_request_error",
            "This API call cannot be made with a publishable API key. Please use a secret API key.",
        )
    return key


def _fault_response(fault: Fault) -> Response | None:
    if fault.action == "error":
        return StripeError(500, "api_error", "An unexpected error occurred (injected by the emulator).").response()
    if fault.action == "rate_limit":
        response = StripeError(
            429, "invalid_request_error", "Too many requests hit the API too quickly.", "rate_limit"
        ).response()
        response.headers["Retry-After"] = "1"
        return response
    return None


async def _handle(
    emu: Emulator, handler: Handler, params: dict[str, Any], path: dict[str, str], fault: Fault | None
) -> Response:
    if fault and fault.action == "latency":
        await asyncio.sleep(fault.latency_ms / 1000)  # slow while holding its idempotency key
    try:
        obj = await handler(emu, params, path)
    except StripeError as exc:
        return exc.response()
    return StripeJSON(expand(emu.store, obj, list(params.get("expand", []))))


def _endpoint(emu: Emulator, handler: Handler, publishable: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request_id = f"req_{secrets.token_hex(7)}"
        response = await _serve(emu, handler, request, request_id, publishable)
        response.headers["Request-Id"] = request_id
        return response

    return endpoint


async def _serve(emu: Emulator, handler: Handler, request: Request, request_id: str, publishable: bool) -> Response:
    try:
        api_key = _api_key(request, publishable)
    except StripeError as exc:
        return exc.response()
    fault = emu.faults.take(request.method, request.url.path)
    if fault and (refusal := _fault_response(fault)):
        return refusal  # failed before doing anything: nothing done, nothing stored

    raw = await request.body() if request.method == "POST" else request.url.query.encode()
    params = parse_form(raw.decode())
    path = dict(request.path_params)
    key = request.headers.get("idempotency-key") if request.method == "POST" else None
    current_request.set({"id": request_id, "idempotency_key": key})
    current_origin.set(str(request.base_url).rstrip("/"))

    if key is None:
        response = await _handle(emu, handler, params, path, fault)
    else:
        try:
            earlier = emu.idempotency.begin(
                api_key, key, emu.idempotency.fingerprint(request.method, request.url.path, raw)
            )
        except StripeError as exc:
            if exc.status == 409:
                emu.store.count("idempotency.in_flight", key)  # tests check that a retry met one
                if fault:
                    emu.faults.give_back(fault)  # nothing done: the fault waits for a request that does something
            return exc.response()
        if earlier is not None:
            response = Response(
                earlier.body,
                earlier.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
            )
        else:
            try:
                response = await _handle(emu, handler, params, path, fault)
            except BaseException:
                emu.idempotency.abandon(api_key, key)
                raise
            emu.idempotency.finish(api_key, key, response.status_code, bytes(response.body))
            response.headers["Idempotency-Key"] = key

    if fault and fault.action == "timeout_after_commit":
        # Committed (by this request or by the one it replays): a chaos run learns which object the
        # fault held (counter `held.<fault id>`).
        emu.store.count(f"held.{fault.id}", request.url.path)
        await asyncio.sleep(fault.hang_seconds)  # the change is committed; the client never hears back
    return response


async def _unknown(request: Request) -> Response:
    return StripeError(
        404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {request.url.path})."
    ).response()


def _v1_routes(emu: Emulator) -> list[BaseRoute]:
    table: list[tuple[str, str, Handler]] = [
        ("POST", "/v1/payment_intents", payment_intents.create),
        ("GET", "/v1/payment_intents", payment_intents.list_all),
        ("GET", "/v1/payment_intents/{id}", payment_intents.retrieve),
        ("POST", "/v1/payment_intents/{id}", payment_intents.update),
        ("POST", "/v1/payment_intents/{id}/confirm", payment_intents.confirm),
        ("POST", "/v1/payment_intents/{id}/capture", payment_intents.capture),
        ("POST", "/v1/payment_intents/{id}/cancel", payment_intents.cancel),
        ("POST", "/v1/payment_methods", payment_methods.create),
        ("GET", "/v1/payment_methods/{id}", payment_methods.retrieve),
        ("POST", "/v1/payment_methods/{id}/attach", customers.attach),
        ("POST", "/v1/payment_methods/{id}/detach", customers.detach),
        ("POST", "/v1/customers", customers.create),
        ("GET", "/v1/customers/{id}", customers.retrieve),
        ("POST", "/v1/customers/{id}", customers.update),
        ("GET", "/v1/customers/{id}/payment_methods", customers.list_payment_methods),
        ("POST", "/v1/setup_intents", setup_intents.create),
        ("GET", "/v1/setup_intents", setup_intents.list_all),
        ("GET", "/v1/setup_intents/{id}", setup_intents.retrieve),
        ("POST", "/v1/setup_intents/{id}/confirm", setup_intents.confirm),
        ("POST", "/v1/setup_intents/{id}/cancel", setup_intents.cancel),
        ("GET", "/v1/charges", payment_intents.list_charges),
        ("GET", "/v1/charges/{id}", payment_intents.retrieve_charge),
        ("POST", "/v1/refunds", refunds.create),
        ("GET", "/v1/refunds", refunds.list_all),
        ("GET", "/v1/refunds/{id}", refunds.retrieve),
        ("POST", "/v1/accounts", accounts.create),
        ("GET", "/v1/accounts", accounts.list_all),
        ("GET", "/v1/accounts/{id}", accounts.retrieve),
        ("POST", "/v1/transfers", transfers.create),
        ("GET", "/v1/transfers", transfers.list_all),
        ("GET", "/v1/transfers/{id}", transfers.retrieve),
        ("POST", "/v1/transfers/{id}/reversals", transfers.reverse),
        ("GET", "/v1/transfers/{id}/reversals", transfers.list_reversals),
        ("GET", "/v1/disputes", disputes.list_all),
        ("GET", "/v1/disputes/{id}", disputes.retrieve),
        ("POST", "/v1/disputes/{id}", disputes.update),
        ("POST", "/v1/disputes/{id}/close", disputes.close),
        ("GET", "/v1/balance", transfers.balance),
        ("GET", "/v1/balance_transactions", transfers.list_balance_transactions),
        ("GET", "/v1/balance_transactions/{id}", transfers.retrieve_balance_transaction),
        ("GET", "/v1/events", events.list_all),
        ("GET", "/v1/events/{id}", events.retrieve),
    ]
    routes: list[BaseRoute] = [
        Route(path, _endpoint(emu, handler, (method, path) in PUBLISHABLE), methods=[method])
        for method, path, handler in table
    ]
    routes.append(Route("/v1/{path:path}", _unknown, methods=["GET", "POST", "DELETE"]))
    return routes


def create_app(emulator: Emulator | None = None) -> Starlette:
    emu = emulator or Emulator()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await emu.webhooks.aclose()

    app = Starlette(routes=[*_v1_routes(emu), *browser.routes(emu), *control_routes(emu)], lifespan=lifespan)
    app.state.emulator = emu
    return app
