"""GET /payments/{tx_id}/timeline: one payment's story in time order, for its parties only."""

import asyncio
import json
import sys
from datetime import datetime

from payments.config.settings import Settings
from tests.integration.conftest import Parties, command_env, stripe_intent


async def test_the_timeline_tells_a_refunded_payment_in_order(parties: Parties, auth) -> None:
    tx = await parties.captured(900)
    assert (await parties.refund(tx["id"], 400)).status_code == 201

    answer = await parties.api.get(f"/payments/{tx['id']}/timeline", headers=auth("operator"))
    assert answer.status_code == 200
    timeline = answer.json()
    assert timeline["tx_id"] == tx["id"] and timeline["workflow_id"].startswith("payment:")
    data = timeline["data"]
    moments = [datetime.fromisoformat(entry["at"]) for entry in data]
    assert moments == sorted(moments)
    statuses = [entry["status"] for entry in data if entry["kind"] == "status"]
    assert statuses == ["pending", "authorized", "confirmed", "partially_refunded"]
    events = [entry["type"] for entry in data if entry["kind"] == "event"]
    assert events == ["payment.authorized", "payment.confirmed", "refund.succeeded"]
    postings = [entry for entry in data if entry["kind"] == "ledger"]
    assert [p["reference"].split(":")[0] for p in postings] == ["capture", "refund"]
    assert all(sum(e["amount"] for e in p["entries"]) == 0 for p in postings)  # each posting balances
    (intent,) = [entry for entry in data if entry["kind"] == "stripe"]
    assert intent["status"] == "succeeded" and intent["amount_received"] == 900

    for headers in (parties.as_user, parties.as_merchant):
        mine = await parties.api.get(f"/payments/{tx['id']}/timeline", headers=headers)
        assert mine.status_code == 200 and mine.json()["tx_id"] == tx["id"]
    stranger = await parties.api.get(f"/payments/{tx['id']}/timeline", headers=auth("user", "usr_stranger"))
    assert stranger.status_code == 404


async def test_payments_inspect_prints_the_same_timeline(parties: Parties, auth, stack_settings: Settings) -> None:
    tx = await parties.captured(600)
    api = (await parties.api.get(f"/payments/{tx['id']}/timeline", headers=auth("operator"))).json()

    async def inspect(*flags: str) -> str:
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "payments", "inspect", tx["id"], *flags,
            env=command_env(stack_settings), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await command.communicate()
        assert command.returncode == 0
        return out.decode()

    printed = json.loads(await inspect("--json"))
    assert {k: printed[k] for k in ("tx_id", "workflow_id")} == {k: api[k] for k in ("tx_id", "workflow_id")}
    assert [(e["kind"], datetime.fromisoformat(e["at"])) for e in printed["data"]] == [
        (e["kind"], datetime.fromisoformat(e["at"])) for e in api["data"]
    ]
    lines = (await inspect()).splitlines()
    assert lines[0] == f"{tx['id']}  workflow {api['workflow_id']}"
    assert len(lines) == 1 + len(api["data"]) and any('"status": "confirmed"' in line for line in lines)


async def test_the_payer_sees_the_story_and_the_merchant_its_fee(parties: Parties, auth) -> None:
    tx = await parties.captured(1000)
    path = f"/payments/{tx['id']}/timeline"
    mine = (await parties.api.get(path, headers=parties.as_user)).json()["data"]
    assert [e["status"] for e in mine if e["kind"] == "status"] == ["pending", "authorized", "confirmed"]
    assert not [e for e in mine if e["kind"] in ("ledger", "delivery")]
    assert "platform_revenue" not in json.dumps(mine)
    for headers in (parties.as_merchant, auth("operator")):
        data = (await parties.api.get(path, headers=headers)).json()["data"]
        (capture,) = [e for e in data if e["kind"] == "ledger"]
        assert {"account": "platform_revenue", "amount": -25, "currency": "usd"} in capture["entries"]


async def test_two_quick_timeline_reads_cost_one_stripe_request(
    parties: Parties, emulator_control, stack_settings: Settings
) -> None:
    tx = await parties.authorized(700)
    intent_id = stripe_intent(stack_settings, tx["id"]).id

    def reads() -> int:
        counters = emulator_control("GET", "/counters").json()
        return int(counters.get("payment_intents.retrieve", {}).get(intent_id, 0))

    before = reads()
    answers = [await parties.api.get(f"/payments/{tx['id']}/timeline", headers=parties.as_user) for _ in range(2)]
    assert [[e["status"] for e in a.json()["data"] if e["kind"] == "stripe"] for a in answers] == [
        ["requires_capture"]
    ] * 2
    assert reads() == before + 1
