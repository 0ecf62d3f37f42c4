"""Refunds: partial and full, never beyond what was captured, even when two race."""

import asyncio

from tests.integration.conftest import Parties, stripe_intent


async def test_partial_then_full_refund(parties: Parties, stack_settings) -> None:
    tx = await parties.captured(1000)
    first = await parties.refund(tx["id"], 300)
    assert first.status_code == 201
    assert first.json()["status"] == "succeeded" and first.json()["amount"] == 300
    assert (await parties.get(tx["id"]))["status"] == "partially_refunded"
    rest = await parties.refund(tx["id"])
    assert rest.json()["amount"] == 700
    final = await parties.get(tx["id"])
    assert final["status"] == "refunded" and final["amount_refunded"] == 1000
    charge_id = stripe_intent(stack_settings, tx["id"]).latest_charge
    import stripe

    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": stack_settings.stripe_api_base})
    assert client.v1.charges.retrieve(charge_id).amount_refunded == 1000


async def test_a_refund_beyond_the_captured_amount_is_refused(parties: Parties) -> None:
    tx = await parties.captured(1000, capture=600)
    beyond = await parties.refund(tx["id"], 601)
    assert beyond.status_code == 409 and beyond.json()["error"]["code"] == "refund_exceeds_captured"
    assert (await parties.get(tx["id"]))["amount_refunded"] == 0


async def test_an_uncaptured_payment_cannot_be_refunded(parties: Parties) -> None:
    tx = await parties.authorized()
    response = await parties.refund(tx["id"], 100)
    assert response.status_code == 409 and response.json()["error"]["status"] == "authorized"


async def test_a_repeated_refund_request_is_one_refund(parties: Parties) -> None:
    tx = await parties.captured(1000)
    first = await parties.refund(tx["id"], 400, key="refund-once")
    again = await parties.refund(tx["id"], 400, key="refund-once")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert (await parties.get(tx["id"]))["amount_refunded"] == 400


async def test_a_refund_key_reused_with_another_amount_or_reason_is_refused(parties: Parties) -> None:
    tx = await parties.captured(1000)
    first = await parties.refund(tx["id"], 300, key="refund-reused")
    assert first.status_code == 201, first.text
    other_amount = await parties.refund(tx["id"], 500, key="refund-reused")
    assert other_amount.status_code == 422 and other_amount.json()["error"]["code"] == "idempotency_key_reused"
    body = {"idempotency_key": "refund-reused", "amount": 300, "reason": "duplicate"}
    other_reason = await parties.api.post(f"/payments/{tx['id']}/refunds", json=body, headers=parties.as_merchant)
    assert other_reason.status_code == 422 and other_reason.json()["error"]["code"] == "idempotency_key_reused"
    the_rest = await parties.refund(tx["id"], key="refund-reused")  # no amount: the first answer
    assert the_rest.status_code == 200 and the_rest.json()["id"] == first.json()["id"]
    assert (await parties.get(tx["id"]))["amount_refunded"] == 300


async def test_racing_refunds_never_exceed_the_capture(parties: Parties) -> None:
    tx = await parties.captured(1000)
    responses = await asyncio.gather(*[parties.refund(tx["id"], 400) for _ in range(4)])
    succeeded = [r for r in responses if r.status_code == 201]
    assert len(succeeded) == 2
    assert all(r.json()["error"]["code"] == "refund_exceeds_captured" for r in responses if r.status_code != 201)
    assert (await parties.get(tx["id"]))["amount_refunded"] == 800


async def test_only_the_payments_merchant_or_an_operator_refund(parties: Parties, auth) -> None:
    tx = await parties.captured(1000)
    body = {"idempotency_key": "k", "amount": 10}
    as_user = await parties.api.post(f"/payments/{tx['id']}/refunds", json=body, headers=parties.as_user)
    as_other_merchant = await parties.api.post(
        f"/payments/{tx['id']}/refunds", json=body, headers=auth("merchant", "mer_someone_else")
    )
    assert as_user.status_code == 404 and as_other_merchant.status_code == 404
    as_operator = await parties.api.post(f"/payments/{tx['id']}/refunds", json=body, headers=auth("operator"))
    assert as_operator.status_code == 201
