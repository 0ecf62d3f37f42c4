"""The browser side of the emulator, on its own origin as Stripe's is: a Stripe.js-compatible script
at `/v3`, the card field it frames (which alone sends the card number, to `/v1/payment_methods`),
and the 3-D Secure page a `redirect_to_url` next action points to."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from stripe_emulator import payment_intents
from stripe_emulator.emulator import Emulator
from stripe_emulator.store import Obj
from stripe_emulator.wire import parse_form

STATIC = Path(__file__).with_name("static")
CHALLENGE = Template((STATIC / "challenge.html").read_text())


def _static(name: str, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(_: Request) -> Response:
        return FileResponse(STATIC / name, media_type=media_type)

    return serve


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def routes(emu: Emulator) -> list[BaseRoute]:
    def waiting_intent(intent_id: str, client_secret: str) -> Obj | None:
        """The PaymentIntent, if the secret is its own and it waits for a redirect authentication."""
        intent = emu.store.get(intent_id)
        if intent is None or intent["object"] != "payment_intent":
            return None
        if not hmac.compare_digest(intent["client_secret"], client_secret):
            return None
        action = intent["next_action"] or {}
        return intent if action.get("type") == "redirect_to_url" else None

    async def challenge(request: Request) -> Response:
        intent = waiting_intent(
            request.query_params.get("payment_intent", ""), request.query_params.get("payment_intent_client_secret", "")
        )
        if intent is None:
            return HTMLResponse("<h1>Nothing to authenticate</h1>", status_code=404)
        page = CHALLENGE.substitute(
            amount=f"{intent['amount'] / 100:.2f} {intent['currency'].upper()}",
            payment_intent=escape(intent["id"]),
            client_secret=escape(intent["client_secret"]),
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": "frame-ancestors 'none'"})

    async def complete(request: Request) -> Response:
        """Approve or fail as the customer did, then send them back to the shop, as Stripe does."""
        form = parse_form((await request.body()).decode())
        intent = waiting_intent(form.get("payment_intent", ""), form.get("payment_intent_client_secret", ""))
        if intent is None:
            return HTMLResponse("<h1>Nothing to authenticate</h1>", status_code=404)
        return_url = intent["next_action"]["redirect_to_url"]["return_url"]
        intent = payment_intents.complete_action(emu, intent["id"], form.get("outcome") == "succeed")
        status = "succeeded" if intent["status"] in ("requires_capture", "succeeded") else "failed"
        back = _with_query(
            return_url,
            payment_intent=intent["id"],
            payment_intent_client_secret=intent["client_secret"],
            redirect_status=status,
        )
        return RedirectResponse(back, status_code=303)

    return [
        Route("/v3", _static("stripe.js", "text/javascript"), methods=["GET"]),
        Route("/v3/elements/card", _static("card.html", "text/html"), methods=["GET"]),
        Route("/v3/elements/card.js", _static("card.js", "text/javascript"), methods=["GET"]),
        Route("/3d_secure_2/hosted", challenge, methods=["GET"]),
        Route("/3d_secure_2/hosted", complete, methods=["POST"]),
    ]
