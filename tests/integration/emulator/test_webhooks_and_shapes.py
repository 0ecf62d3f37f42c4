"""Signed webhooks that `stripe.Webhook.construct_event` accepts, object shapes that match
Stripe's own fixtures, and state that survives a restart."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route

from devstack.ports import wait_until
from stripe_emulator.app import create_app
from stripe_emulator.emulator import Emulator
from tests.integration.emulator.conftest import API_KEY, authorize
from tests.services import serve_in_thread

SECRET = "whsec_contract_test"
ROOT = Path(__file__).parents[3]
SHARED_FIXTURES = ROOT.parent / "shared" / "contracts" / "stripe" / "fixtures3.json"


def stripe_fixtures() -> dict[str, Any]:
    """Stripe's fixtures3.json (`resources` by type) when the shared contracts sit beside the
    checkout, else the emulator's extract of the same objects (a clone on its own)."""
    if SHARED_FIXTURES.exists():
        return dict(json.loads(SHARED_FIXTURES.read_text())["resources"])
    return dict(json.loads((ROOT / "stripe_emulator" / "fixtures.json").read_text()))


def _register(emulator_url: str, hook: str, enabled_events: list[str] | None = None) -> None:
    endpoint = {"url": hook, "secret": SECRET, "enabled_events": enabled_events}
    assert httpx.post(f"{emulator_url}/_emulator/webhook_endpoints", json=endpoint).status_code == 201


def test_webhooks_verify_with_the_secret_and_fail_with_another(
    client: stripe.StripeClient, emulator_url: str, receiver_factory
) -> None:
    receiver, hook = receiver_factory()
    _register(emulator_url, hook)
    intent = authorize(client)
    receiver.wait_for(3)  # created, charge.succeeded, amount_capturable_updated; in any order, as at Stripe
    events = {json.loads(body)["type"]: (body, signature) for body, signature in receiver.received}
    payload, signature = events["payment_intent.created"]
    event = stripe.Webhook.construct_event(payload, signature, SECRET)
    assert event.type == "payment_intent.created" and event.data.object["id"] == intent.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, signature, "whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.replace(b"1000", b"9999"), signature, SECRET)


def test_webhooks_are_retried_until_the_endpoint_answers_2xx(
    client: stripe.StripeClient, emulator: Emulator, emulator_url: str, receiver_factory
) -> None:
    emulator.webhooks.first_retry_seconds = 0.05
    receiver, hook = receiver_factory(fail_first=2)
    _register(emulator_url, hook)
    client.v1.accounts.create(params={"type": "express"})  # exactly one event
    receiver.wait_for(3)
    deliveries = httpx.get(f"{emulator_url}/_emulator/webhook_deliveries").json()["data"]
    assert deliveries[0]["attempts"] == [500, 500, 200] and deliveries[0]["delivered"] is True
    assert receiver.received[0][0] == receiver.received[2][0]  # the same event each time


def test_a_redirect_is_a_failed_delivery_never_followed(
    client: stripe.StripeClient, emulator: Emulator, emulator_url: str, receiver_factory
) -> None:
    """As at Stripe: an endpoint that answers 3xx (a moved URL, a trailing slash) has not received
    the event, however good the place it points to."""
    emulator.webhooks.first_retry_seconds = 0.01
    receiver, hook = receiver_factory()
    moved = Starlette(routes=[Route("/moved", lambda _: RedirectResponse(hook, status_code=307), methods=["POST"])])
    with serve_in_thread(moved) as url:
        _register(emulator_url, f"{url}/moved")
        client.v1.accounts.create(params={"type": "express"})  # exactly one event

        def attempts() -> list[int]:
            deliveries = httpx.get(f"{emulator_url}/_emulator/webhook_deliveries").json()["data"]
            return [status for d in deliveries if d["url"] == f"{url}/moved" for status in d["attempts"]]

        wait_until(lambda: len(attempts()) == emulator.webhooks.max_attempts, "every attempt made", 30)
    assert set(attempts()) == {307} and receiver.received == []


def test_an_endpoint_receives_only_its_enabled_events(
    client: stripe.StripeClient, emulator_url: str, receiver_factory
) -> None:
    everything, all_hook = receiver_factory()
    subscribed, one_hook = receiver_factory()
    _register(emulator_url, all_hook)
    _register(emulator_url, one_hook, ["payment_intent.amount_capturable_updated"])
    authorize(client)
    everything.wait_for(3)  # every event of the authorization has been queued by now
    subscribed.wait_for(1)
    deliveries = httpx.get(f"{emulator_url}/_emulator/webhook_deliveries").json()["data"]
    assert [d["event_type"] for d in deliveries if d["url"] == one_hook] == ["payment_intent.amount_capturable_updated"]
    assert json.loads(subscribed.received[0][0])["pending_webhooks"] == 2


def test_the_3ds_outcome_reaches_the_webhook(client: stripe.StripeClient, emulator_url: str, receiver_factory) -> None:
    intent = authorize(client, method="pm_card_authenticationRequired")
    receiver, hook = receiver_factory()
    _register(emulator_url, hook)
    httpx.post(f"{emulator_url}/_emulator/payment_intents/{intent.id}/complete_action", json={"outcome": "succeed"})
    receiver.wait_for(2)
    types = [json.loads(body)["type"] for body, _ in receiver.received]
    assert "payment_intent.amount_capturable_updated" in types


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def _shape_mismatches(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key, expected in theirs.items():
        if key not in ours:
            problems.append(f"{where}.{key} is missing")
            continue
        actual = ours[key]
        if expected is None or actual is None:
            continue  # nullable at Stripe
        if _json_type(actual) != _json_type(expected) and {_json_type(actual), _json_type(expected)} != {
            "integer",
            "number",
        }:
            problems.append(f"{where}.{key} is {_json_type(actual)}, Stripe's is {_json_type(expected)}")
        elif isinstance(expected, dict) and key != "metadata" and f"{where}.{key}" != "event.data.object":
            # metadata holds the caller's keys; an event's object is whatever type the event is about
            problems += _shape_mismatches(actual, expected, f"{where}.{key}")
    return problems


def _raw(emulator_url: str, path: str) -> dict[str, Any]:
    return httpx.get(f"{emulator_url}{path}", headers={"Authorization": f"Bearer {API_KEY}"}).json()


def test_every_object_type_has_every_field_of_stripes_fixture(client: stripe.StripeClient, emulator_url: str) -> None:
    fixtures = stripe_fixtures()
    account = client.v1.accounts.create(params={"type": "express"})
    intent = client.v1.payment_intents.capture(authorize(client, 5000).id)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    transfer = client.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": account.id})
    charge = _raw(emulator_url, f"/v1/charges/{intent.latest_charge}")
    objects = {
        "account": _raw(emulator_url, f"/v1/accounts/{account.id}"),
        "payment_intent": _raw(emulator_url, f"/v1/payment_intents/{intent.id}"),
        "charge": charge,
        "refund": _raw(emulator_url, f"/v1/refunds/{refund.id}"),
        "transfer": _raw(emulator_url, f"/v1/transfers/{transfer.id}"),
        "balance": _raw(emulator_url, "/v1/balance"),
        "balance_transaction": _raw(emulator_url, f"/v1/balance_transactions/{charge['balance_transaction']}"),
        "event": _raw(emulator_url, "/v1/events?limit=1")["data"][0],
        "payment_method": _raw(emulator_url, f"/_emulator/objects/{intent.payment_method}"),
    }
    problems = [p for kind, obj in objects.items() for p in _shape_mismatches(obj, fixtures[kind], kind)]
    assert problems == []
    assert all(objects[kind]["object"] == fixtures[kind]["object"] for kind in objects)


def test_state_survives_a_restart_with_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "stripe.sqlite3"
    with serve_in_thread(create_app(Emulator(state))) as url:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        intent = client.v1.payment_intents.capture(authorize(client, 777).id)
    with serve_in_thread(create_app(Emulator(state))) as url:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        assert client.v1.payment_intents.retrieve(intent.id).amount_received == 777
        assert client.v1.balance.retrieve().available[0].amount == 777 - 52  # net of Stripe's fee
        assert httpx.get(f"{url}/_emulator/counters").json()["payment_intents.capture"] == {intent.id: 1}
