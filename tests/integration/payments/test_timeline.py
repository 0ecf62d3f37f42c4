"""GET /payments/{tx_id}/timeline: one payment's story in time order, for its parties only."""

import asyncio
import json
import sys
from datetime import datetime

from config.settings import Settings
from tests.integration.payments.conftest import Parties, command_env


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
            sys.executable, "-m", "workers.cli", "inspect", tx["id"], *flags,
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
