"""Refunds, connected accounts, transfers, balance and events through the official SDK."""

import time

import httpx
import pytest
import stripe

from stripe_emulator.emulator import Emulator
from tests.integration.emulator.conftest import authorize


def _available(client: stripe.StripeClient) -> int:
    return sum(b.amount for b in client.v1.balance.retrieve().available if b.currency == "usd")


def _captured(client: stripe.StripeClient, amount: int) -> stripe.PaymentIntent:
    intent = authorize(client, amount)
    return client.v1.payment_intents.capture(intent.id)


def test_captures_add_to_the_balance_and_refunds_take_away(client: stripe.StripeClient) -> None:
    before = _available(client)
    intent = _captured(client, 2000)
    assert _available(client) == before + 2000 - 88  # less Stripe's 2.9 % + 30 cents
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    assert _available(client) == before + 1500 - 88  # the fee is not returned
    kinds = {t.type for t in client.v1.balance_transactions.list(params={"limit": 100}).data}
    assert {"charge", "refund"} <= kinds


def test_partial_then_full_refund_never_beyond_captured(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.capture(authorize(client, 1000).id, params={"amount_to_capture": 800})
    first = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 300, "reason": "requested_by_customer"}
    )
    assert first.status == "succeeded" and first.amount == 300 and first.payment_intent == intent.id
    with pytest.raises(stripe.InvalidRequestError) as beyond:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 501})
    assert beyond.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 500
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.amount_refunded == 800 and charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})
    assert again.value.code == "charge_already_refunded"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert client.v1.refunds.retrieve(first.id).amount == 300


def test_an_uncaptured_payment_cannot_be_refunded(client: stripe.StripeClient) -> None:
    intent = authorize(client)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": intent.id})


def test_refund_by_charge_id(client: stripe.StripeClient) -> None:
    intent = _captured(client, 400)
    refund = client.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 100})
    assert refund.charge == intent.latest_charge and refund.payment_intent == intent.id


def test_transfers_move_balance_to_a_connected_account(client: stripe.StripeClient) -> None:
    account = client.v1.accounts.create(params={"type": "express", "metadata": {"merchant_id": "mer_1"}})
    assert account.id.startswith("acct_") and client.v1.accounts.retrieve(account.id).metadata["merchant_id"] == "mer_1"
    _captured(client, 5000)
    before = _available(client)
    transfer = client.v1.transfers.create(
        params={
            "amount": 1200,
            "currency": "usd",
            "destination": account.id,
            "transfer_group": "payout_1",
            "metadata": {"payout_id": "po_1"},
        }
    )
    assert transfer.destination == account.id and transfer.amount == 1200 and transfer.metadata["payout_id"] == "po_1"
    assert _available(client) == before - 1200
    assert [t.id for t in client.v1.transfers.list(params={"destination": account.id}).data] == [transfer.id]
    assert client.v1.transfers.retrieve(transfer.id).transfer_group == "payout_1"


def test_a_transfer_beyond_the_available_balance_is_refused(client: stripe.StripeClient) -> None:
    account = client.v1.accounts.create(params={"type": "express"})
    _captured(client, 100)
    with pytest.raises(stripe.InvalidRequestError) as short:
        client.v1.transfers.create(
            params={"amount": _available(client) + 1, "currency": "usd", "destination": account.id}
        )
    assert short.value.code == "balance_insufficient"


def test_a_transfer_to_an_unknown_account_is_resource_missing(client: stripe.StripeClient) -> None:
    _captured(client, 100)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.transfers.create(params={"amount": 10, "currency": "usd", "destination": "acct_nope"})
    assert missing.value.code == "resource_missing" and missing.value.param == "destination"


def test_fees_when_configured_come_off_the_net(emulator: Emulator, client: stripe.StripeClient) -> None:
    emulator.fees.bps, emulator.fees.fixed = 290, 30
    intent = _captured(client, 10_000)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net) == (10_000, 320, 9_680)


def test_every_change_is_an_event(client: stripe.StripeClient) -> None:
    intent = _captured(client, 900)
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    for expected in (
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
        "refund.created",
        "charge.refunded",
    ):
        assert expected in types
    succeeded = client.v1.events.list(params={"type": "payment_intent.succeeded"}).data
    assert succeeded[0].data.object["id"] == intent.id
    assert client.v1.events.retrieve(succeeded[0].id).type == "payment_intent.succeeded"


def test_every_change_reconciliation_reads_is_listed_since_a_time(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    """Reconciliation reads what changed since its last run from the Events API, filtered by type:
    captures, voids, refunds (a refund failing later is announced too), transfers and reversals."""
    since = int(time.time())
    captured, voided = _captured(client, 700), authorize(client, 300)
    client.v1.payment_intents.cancel(voided.id)
    refund = client.v1.refunds.create(params={"payment_intent": captured.id, "amount": 100})
    failed = httpx.post(
        f"{emulator_url}/_emulator/objects/{refund.id}",
        params={"event": "charge.refund.updated"},
        json={"status": "failed", "failure_reason": "expired_or_canceled_card"},
    )
    assert failed.status_code == 200
    destination = client.v1.accounts.create(params={"type": "express", "country": "US"}).id
    transfer = client.v1.transfers.create(params={"amount": 50, "currency": "usd", "destination": destination})
    client.v1.transfers.reversals.create(transfer.id, params={"amount": 20})
    wanted = [
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.canceled",
        "charge.refunded",
        "charge.refund.updated",
        "transfer.created",
        "transfer.reversed",
    ]
    listed = client.v1.events.list(params={"types": wanted, "created": {"gte": since}, "limit": 100}).data
    about = {(e.type, e.data.object["id"]) for e in listed}
    assert {
        ("payment_intent.succeeded", captured.id),
        ("payment_intent.canceled", voided.id),
        ("charge.refund.updated", refund.id),
        ("transfer.created", transfer.id),
        ("transfer.reversed", transfer.id),
    } <= about and {e.type for e in listed} == set(wanted)
    announced = next(e for e in listed if e.type == "charge.refund.updated")
    assert announced.data.object["status"] == "failed" and announced.data.previous_attributes["status"] == "succeeded"
    assert announced.pending_webhooks == 0  # its webhook lost: only the Events API tells


def test_seeded_history_can_carry_its_events(client: stripe.StripeClient, emulator_url: str) -> None:
    body = {"count": 3, "amount": 500, "currency": "usd", "created_from": 1000, "created_to": 1003, "tx_prefix": "t"}
    seeded = httpx.post(f"{emulator_url}/_emulator/seed/payment_intents", json=body | {"events": True}).json()["ids"]
    events = client.v1.events.list(params={"created": {"lt": 1003}, "limit": 10}).data
    assert sorted(e.data.object["id"] for e in events) == sorted(seeded)
    assert {(e.type, e.created) for e in events} == {("payment_intent.succeeded", c) for c in (1000, 1001, 1002)}


def test_out_of_band_mutation_changes_stripe_silently(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = authorize(client)
    events_before = len(client.v1.events.list(params={"limit": 100}).data)
    mutated = httpx.post(f"{emulator_url}/_emulator/objects/{intent.id}", json={"status": "canceled", "amount": 1})
    assert mutated.status_code == 200
    seen = client.v1.payment_intents.retrieve(intent.id)
    assert seen.status == "canceled" and seen.amount == 1
    assert len(client.v1.events.list(params={"limit": 100}).data) == events_before
    assert httpx.post(f"{emulator_url}/_emulator/objects/{intent.id}", json={"id": "pi_x"}).status_code == 400


def test_deleted_objects_are_missing_with_their_events(client: stripe.StripeClient, emulator_url: str) -> None:
    intent, other = authorize(client), authorize(client)
    assert httpx.delete(f"{emulator_url}/_emulator/objects/{intent.id}").status_code == 200
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(intent.id)
    assert intent.id not in [p.id for p in client.v1.payment_intents.list().data]
    about = {e.data.object["id"] for e in client.v1.events.list(params={"limit": 100}).data}
    assert intent.id not in about and other.id in about  # as if Stripe never had it


def test_reset_forgets_everything(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = _captured(client, 300)
    assert httpx.post(f"{emulator_url}/_emulator/reset").status_code == 200
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(intent.id)
    assert _available(client) == 0
    assert httpx.get(f"{emulator_url}/_emulator/counters").json() == {}


def test_counters_prove_exactly_once(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = authorize(client)
    client.v1.payment_intents.capture(intent.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.capture(intent.id)
    counters = httpx.get(f"{emulator_url}/_emulator/counters").json()
    assert counters["payment_intents.capture"] == {intent.id: 1}
    assert counters["payment_intents.create"][intent.id] == 1


def test_seeded_accounts_and_top_up_fund_transfers_like_onboarded_ones(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    seeded = httpx.post(
        f"{emulator_url}/_emulator/seed/accounts", json={"merchant_ids": ["mer_a", "mer_b"], "currency": "usd"}
    ).json()["ids"]
    account = client.v1.accounts.retrieve(seeded[1])
    assert (account.metadata["merchant_id"], account.payouts_enabled) == ("mer_b", True)
    before = _available(client)
    topped = httpx.post(f"{emulator_url}/_emulator/seed/topup", json={"amount": 5000, "currency": "usd"}).json()
    assert topped["type"] == "topup" and _available(client) == before + 5000
    transfer = client.v1.transfers.create(params={"amount": 5000, "currency": "usd", "destination": seeded[0]})
    assert transfer.destination == seeded[0] and _available(client) == before


def test_a_pending_refund_settles_succeeded_when_the_network_confirms(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    intent = client.v1.payment_intents.capture(authorize(client, 1200, "pm_card_pendingRefund").id)
    before = _available(client)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 700})
    assert refund.status == "pending" and _available(client) == before - 700  # the money left at creation
    assert client.v1.charges.retrieve(intent.latest_charge).amount_refunded == 700
    settled = httpx.post(f"{emulator_url}/_emulator/refunds/{refund.id}/succeed")
    assert settled.status_code == 200 and settled.json()["status"] == "succeeded"
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    updated = client.v1.events.list(params={"type": "charge.refund.updated"}).data[0]
    assert updated.data.object["id"] == refund.id and updated.data.previous_attributes["status"] == "pending"
    again = httpx.post(f"{emulator_url}/_emulator/refunds/{refund.id}/succeed")
    assert again.status_code == 400 and again.json()["error"]["code"] == "refund_unexpected_state"


def test_a_refund_failing_later_gives_the_amount_back(client: stripe.StripeClient, emulator_url: str) -> None:
    intent = _captured(client, 1000)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id})
    assert refund.status == "succeeded" and client.v1.charges.retrieve(intent.latest_charge).refunded is True
    unknown = httpx.post(f"{emulator_url}/_emulator/refunds/{refund.id}/fail", json={"failure_reason": "whim"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "failure_reason"
    before = _available(client)
    failed = httpx.post(
        f"{emulator_url}/_emulator/refunds/{refund.id}/fail", json={"failure_reason": "lost_or_stolen_card"}
    )
    assert failed.status_code == 200, failed.text
    read = client.v1.refunds.retrieve(refund.id)
    assert (read.status, read.failure_reason) == ("failed", "lost_or_stolen_card")
    returned = client.v1.balance_transactions.retrieve(read.failure_balance_transaction)
    assert (returned.type, returned.amount) == ("refund_failure", 1000) and _available(client) == before + 1000
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    updated = client.v1.events.list(params={"type": "charge.refund.updated"}).data[0]
    assert updated.data.object["status"] == "failed" and updated.data.object["failure_reason"] == "lost_or_stolen_card"
    assert [e.data.object["id"] for e in client.v1.events.list(params={"type": "refund.failed"}).data] == [refund.id]
    twice = httpx.post(f"{emulator_url}/_emulator/refunds/{refund.id}/fail")
    assert twice.status_code == 400
