"""Issue 25, item 2 with no client at all: a payment that moved at Stripe outside our own calls is
brought in line by Stripe's webhook alone. Here a void: the authorization canceled at Stripe (from
its dashboard, say) while the payment's workflow waits for a confirm."""

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from payments.config.settings import Settings
from payments.schema.tables import OutboxEvent
from payments.workflows.payment import workflow_id
from tests.integration.conftest import Parties, stripe_intent
from tests.services import fresh_key


async def test_a_void_made_at_stripe_while_the_payment_waits_is_recorded_without_any_client(
    parties: Parties, stack_settings: Settings, temporal_client: Client, engine: AsyncEngine
) -> None:
    key = fresh_key()
    tx = (await parties.init(700, key=key)).json()
    assert tx["status"] == "authorized"
    intent = stripe_intent(stack_settings, tx["id"])
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": stack_settings.stripe_api_base})
    client.v1.payment_intents.cancel(intent.id)

    row = await parties.wait_for_status(tx["id"], "canceled", within=30)
    assert (row["amount_captured"], row["failure_code"]) == (0, "canceled_at_stripe")
    assert (await temporal_client.get_workflow_handle(workflow_id(parties.user_id, key)).result())[
        "status"
    ] == "canceled"
    async with engine.connect() as connection:
        events = (await connection.execute(select(OutboxEvent.type).where(OutboxEvent.aggregate_id == tx["id"]))).all()
    assert sorted(e.type for e in events) == ["payment.authorized", "payment.canceled"]
    assert stripe_intent(stack_settings, tx["id"]).status == "canceled"
