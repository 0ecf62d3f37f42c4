"""The checkout page: a shop links its customer to `/checkout?user_id&merchant_id&amount&currency`
with the customer's token in the fragment. Card details are typed into the card processor's own
iframe (Stripe.js, or the emulator's copy of it), so this origin only ever sees a `pm_…` id."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy.dialects.postgresql import insert
from temporalio.common import WorkflowIDConflictPolicy

from payments.api.auth import mint_token
from payments.api.checkout_address import PAGE_PATH
from payments.api.contract import public_errors
from payments.api.deps import ServicesDep, Session, TemporalClient, limit_by_ip
from payments.api.errors import NotFound, ServiceUnavailable
from payments.api.models import DemoCheckout
from payments.config.settings import Settings
from payments.schema.messages import NewMerchant
from payments.schema.tables import Merchant, User
from payments.workflows.merchant_onboarding import MerchantOnboardingWorkflow, workflow_id

router = APIRouter(tags=["checkout"], dependencies=[Depends(limit_by_ip)])
ASSETS = Path(__file__).parent.parent / "checkout"
PAGE = Template((ASSETS / "page.html").read_text())
STRIPE_JS_ORIGIN = "https://js.stripe.com"
EMULATOR_PUBLISHABLE_KEY = "pk_test_emulator"

DEMO_USER_ID, DEMO_USER_NAME = "usr_demo", "Demo Customer"
DEMO_MERCHANT = NewMerchant("mer_demo", "Corner Shop", "daily", 290, "usd")
DEMO_TOKEN_TTL = timedelta(minutes=30)


def stripe_js(settings: Settings) -> tuple[str, str]:
    """Where Stripe.js comes from (an origin) and the publishable key it runs with."""
    if not settings.stripe_uses_emulator:
        if not settings.stripe_publishable_key:
            raise ServiceUnavailable("The checkout page needs PAYMENTS_STRIPE_PUBLISHABLE_KEY.")
        return STRIPE_JS_ORIGIN, settings.stripe_publishable_key
    base = urlsplit(settings.stripe_api_base or f"http://127.0.0.1:{settings.stripe_emulator_port}")
    return f"{base.scheme}://{base.netloc}", EMULATOR_PUBLISHABLE_KEY


def content_security_policy(stripe_origin: str) -> str:
    """Exactly what the page needs: its own script, style and API, and Stripe.js with its frame."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {stripe_origin}",
            "style-src 'self'",
            f"frame-src {stripe_origin}",
            "connect-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


@router.get(
    PAGE_PATH,
    response_class=HTMLResponse,
    name="checkout_page",
    summary="The checkout page, HTML (anyone; the payer's token travels in the URL fragment)",
    responses=public_errors(),
)
async def checkout_page(services: ServicesDep) -> HTMLResponse:
    """The checkout page (HTML). Its order comes from the query, the payer's token from the fragment."""
    origin, publishable_key = stripe_js(services.settings)
    demo = "true" if services.settings.env == "development" else "false"
    page = PAGE.substitute(stripe_js=escape(f"{origin}/v3"), publishable_key=escape(publishable_key), demo=demo)
    return HTMLResponse(page, headers={"Content-Security-Policy": content_security_policy(origin)})


@router.post(
    "/checkout/demo",
    summary="A demo order and payer token for the checkout page (anyone, development only)",
    responses=public_errors(NotFound),
)
async def demo_checkout(services: ServicesDep, session: Session, temporal: TemporalClient) -> DemoCheckout:
    """Development only (404 elsewhere): a demo customer and shop, and a short-lived customer token."""
    settings = services.settings
    if settings.env != "development":
        raise NotFound()
    async with session.begin():
        await session.execute(insert(User).values(id=DEMO_USER_ID, name=DEMO_USER_NAME).on_conflict_do_nothing())
        known = await session.get(Merchant, DEMO_MERCHANT.merchant_id)
    if known is None:
        await temporal.execute_workflow(
            MerchantOnboardingWorkflow.run,
            DEMO_MERCHANT,
            id=workflow_id(DEMO_MERCHANT.merchant_id),
            task_queue=settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    return DemoCheckout(
        user_id=DEMO_USER_ID,
        merchant_id=DEMO_MERCHANT.merchant_id,
        merchant_name=DEMO_MERCHANT.name,
        amount=1999,
        currency=DEMO_MERCHANT.currency,
        token=mint_token(settings, DEMO_USER_ID, "user", DEMO_TOKEN_TTL),
    )
