"""Disputes and transfer reversals through the official SDK: a disputed test card opens a dispute
for the whole amount after capture, with Stripe's events, balance transactions and shapes."""

import json

import httpx
import pytest
import stripe

from tests.integration.emulator.conftest import API_KEY, authorize
from tests.integration.emulator.test_webhooks_and_shapes import _register, _shape_mismatches, stripe_fixtures

DISPUTE_FEE = 1500


def _available(client: stripe.StripeClient) -> int:
    return sum(b.amount for b in client.v1.balance.retrieve().available if b.currency == "usd")


def _disputed(client: stripe.StripeClient, amount: int = 2000, method: str = "pm_card_createDispute") -> stripe.Dispute:
    intent = client.v1.payment_intents.capture(authorize(client, amount, method).id)
    disputes = client.v1.disputes.list(params={"payment_intent": intent.id}).data
    assert len(disputes) == 1
    return disputes[0]


def _raw(url: str, path: str) -> dict:
    return httpx.get(f"{url}{path}", headers={"Authorization": f"Bearer {API_KEY}"}).json()


def test_a_disputed_card_opens_a_dispute_for_the_whole_amount_after_capture(
    client: stripe.StripeClient, emulator_url: str, receiver_factory
) -> None:
    receiver, hook = receiver_factory()
    _register(emulator_url, hook, ["charge.dispute.created", "charge.dispute.funds_withdrawn"])
    before = _available(client)
    dispute = _disputed(client, 2000)
    assert (dispute.amount, dispute.currency, dispute.status, dispute.reason) == (
        2000,
        "usd",
        "needs_response",
        "fraudulent",
    )
    assert (dispute.evidence_details.due_by or 0) > dispute.created
    assert client.v1.charges.retrieve(dispute.charge).disputed is True
    withdrawal = dispute.balance_transactions[0]
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-2000, DISPUTE_FEE, -2000 - DISPUTE_FEE)
    assert _available(client) == before + (2000 - 88) - 2000 - DISPUTE_FEE  # capture (net of fee), withdrawal
    receiver.wait_for(2)
    assert {json.loads(body)["type"] for body, _ in receiver.received} == {
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    }
    assert json.loads(receiver.received[0][0])["data"]["object"]["id"] == dispute.id
    assert client.v1.disputes.retrieve(dispute.id).id == dispute.id


def test_a_typed_0259_card_is_disputed_and_a_visa_is_not(client: stripe.StripeClient) -> None:
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4000000000000259", "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    assert _disputed(client, 700, method.id).amount == 700
    intent = client.v1.payment_intents.capture(authorize(client, 700).id)
    assert client.v1.disputes.list(params={"payment_intent": intent.id}).data == []


def test_evidence_submitted_then_won_reinstates_the_amount_not_the_fee(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    dispute = _disputed(client, 3000)
    after_withdrawal = _available(client)
    saved = client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "Delivered, signed."}})
    assert saved.status == "needs_response" and saved.evidence_details.has_evidence is True
    submitted = client.v1.disputes.update(dispute.id, params={"submit": True})
    assert submitted.status == "under_review" and submitted.evidence_details.submission_count == 1
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "more"}})
    won = httpx.post(f"{emulator_url}/_emulator/disputes/{dispute.id}/close", json={"outcome": "won"}).json()
    assert won["status"] == "won"
    assert _available(client) == after_withdrawal + 3000
    events = client.v1.events.list(params={"limit": 6}).data
    assert [e.type for e in events[:2]] == ["charge.dispute.funds_reinstated", "charge.dispute.closed"]
    assert [t.amount for t in client.v1.disputes.retrieve(dispute.id).balance_transactions] == [-3000, 3000]
    created = next(e for e in events if e.type == "charge.dispute.created")
    assert created.data.object["status"] == "needs_response"  # each event keeps the object as it was then
    with pytest.raises(stripe.InvalidRequestError) as closed:
        client.v1.disputes.close(dispute.id)
    assert closed.value.code == "charge_dispute_closed"


def test_accepting_a_dispute_loses_it_and_the_withdrawal_stands(client: stripe.StripeClient, emulator_url: str) -> None:
    dispute = _disputed(client, 1200)
    after_withdrawal = _available(client)
    assert client.v1.disputes.close(dispute.id).status == "lost"
    assert _available(client) == after_withdrawal
    assert client.v1.events.list(params={"limit": 1}).data[0].type == "charge.dispute.closed"
    lost = httpx.post(f"{emulator_url}/_emulator/disputes/{dispute.id}/close", json={"outcome": "won"})
    assert lost.status_code == 400  # decided already


def test_an_inquiry_moves_no_money_until_it_escalates_and_then_the_dispute_fee_is_stripes(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    fees = httpx.post(f"{emulator_url}/_emulator/fees", json={"dispute": 2345})
    assert fees.status_code == 200 and fees.json()["dispute"] == 2345
    before = _available(client)
    inquiry = _disputed(client, 1000, "pm_card_createDisputeInquiry")
    assert (inquiry.status, inquiry.balance_transactions) == ("warning_needs_response", [])
    assert inquiry.payment_method_details.card.case_type == "inquiry"
    assert _available(client) == before + 1000 - 59  # the capture, less Stripe's 2.9 % + 30
    assert client.v1.events.list(params={"type": "charge.dispute.funds_withdrawn"}).data == []
    escalated = httpx.post(f"{emulator_url}/_emulator/disputes/{inquiry.id}/escalate")
    assert escalated.status_code == 200 and escalated.json()["status"] == "needs_response", escalated.text
    withdrawal = client.v1.disputes.retrieve(inquiry.id).balance_transactions[0]
    assert (withdrawal.amount, withdrawal.fee, withdrawal.net) == (-1000, 2345, -3345)
    withdrawn = client.v1.events.list(params={"type": "charge.dispute.funds_withdrawn"}).data
    assert [e.data.object["id"] for e in withdrawn] == [inquiry.id]
    again = httpx.post(f"{emulator_url}/_emulator/disputes/{inquiry.id}/escalate")
    assert again.status_code == 400 and again.json()["error"]["code"] == "dispute_not_inquiry"
    bad = httpx.post(f"{emulator_url}/_emulator/fees", json={"dispute": -1})
    assert bad.status_code == 400


def test_an_inquiry_closes_warning_closed_whatever_is_decided(client: stripe.StripeClient, emulator_url: str) -> None:
    accepted = _disputed(client, 800, "pm_card_createDisputeInquiry")
    assert client.v1.disputes.close(accepted.id).status == "warning_closed"
    reviewed = _disputed(client, 800, "pm_card_createDisputeInquiry")
    assert client.v1.disputes.update(reviewed.id, params={"submit": True}).status == "warning_under_review"
    decided = httpx.post(f"{emulator_url}/_emulator/disputes/{reviewed.id}/close", json={"outcome": "won"})
    assert decided.json()["status"] == "warning_closed" and decided.json()["balance_transactions"] == []


def test_a_won_dispute_may_be_reinstated_later(client: stripe.StripeClient, emulator_url: str) -> None:
    dispute = _disputed(client, 1500)
    after_withdrawal = _available(client)
    won = httpx.post(
        f"{emulator_url}/_emulator/disputes/{dispute.id}/close", json={"outcome": "won", "reinstate": False}
    )
    assert won.json()["status"] == "won" and len(won.json()["balance_transactions"]) == 1
    assert _available(client) == after_withdrawal
    reinstated = httpx.post(f"{emulator_url}/_emulator/disputes/{dispute.id}/reinstate")
    assert reinstated.status_code == 200, reinstated.text
    back = client.v1.disputes.retrieve(dispute.id).balance_transactions[1]
    assert (back.amount, back.fee, back.reporting_category) == (1500, 0, "dispute_reversal")
    assert _available(client) == after_withdrawal + 1500
    assert client.v1.events.list(params={"limit": 1}).data[0].type == "charge.dispute.funds_reinstated"
    twice = httpx.post(f"{emulator_url}/_emulator/disputes/{dispute.id}/reinstate")
    assert twice.status_code == 400


def test_a_transfer_reversal_never_takes_back_more_than_was_sent(client: stripe.StripeClient) -> None:
    client.v1.payment_intents.capture(authorize(client, 5000).id)
    account = client.v1.accounts.create(params={"type": "express"})
    transfer = client.v1.transfers.create(params={"amount": 1000, "currency": "usd", "destination": account.id})
    before = _available(client)
    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 600})
    assert (reversal.amount, reversal.transfer) == (600, transfer.id)
    assert _available(client) == before + 600
    with pytest.raises(stripe.InvalidRequestError) as beyond:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 401})
    assert beyond.value.code == "amount_too_large"
    client.v1.transfers.reversals.create(transfer.id)  # the rest
    again = client.v1.transfers.retrieve(transfer.id)
    assert again.amount_reversed == 1000 and again.reversed is True
    assert [r.amount for r in client.v1.transfers.reversals.list(transfer.id).data] == [400, 600]


def test_disputes_and_reversals_have_every_field_of_stripes_fixture(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    fixtures = stripe_fixtures()
    client.v1.payment_intents.capture(authorize(client, 5000).id)  # funds for the transfer
    dispute = _disputed(client, 900)
    account = client.v1.accounts.create(params={"type": "express"})
    transfer = client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": account.id})
    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 50})
    objects = {
        "dispute": _raw(emulator_url, f"/v1/disputes/{dispute.id}"),
        "transfer_reversal": _raw(emulator_url, f"/_emulator/objects/{reversal.id}"),
    }
    problems = [p for kind, obj in objects.items() for p in _shape_mismatches(obj, fixtures[kind], kind)]
    assert problems == []
