"""Temporal's stored history holds only ciphertext; the codec endpoint opens it for operators."""

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from payments.config.codec import ENCODING
from payments.workflows.merchant_onboarding import workflow_id


async def test_history_is_ciphertext_without_the_key_and_readable_through_codec(
    api: httpx.AsyncClient, auth, temporal_env: WorkflowEnvironment
) -> None:
    name = "Secretive Bakery Ltd"
    merchant = (await api.post("/merchants", json={"name": name, "currency": "usd"}, headers=auth("operator"))).json()

    # A client with no codec sees what Temporal stored.
    raw_client = await Client.connect(
        temporal_env.client.service_client.config.target_host, namespace=temporal_env.client.namespace
    )
    history = await raw_client.get_workflow_handle(workflow_id(merchant["id"])).fetch_history()
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert name.encode() not in stored
    assert merchant["payout_account"].encode() not in stored
    started = history.events[0].workflow_execution_started_event_attributes.input
    assert all(p.metadata["encoding"] == ENCODING for p in started.payloads)

    body = json_format.MessageToDict(started)
    decoded = await api.post("/codec/decode", json=body, headers=auth("operator"))
    assert decoded.status_code == 200
    plain = json_format.ParseDict(decoded.json(), Payloads())
    assert name.encode() in plain.payloads[0].data

    reencoded = await api.post("/codec/encode", json=decoded.json(), headers=auth("operator"))
    assert name.encode() not in json_format.ParseDict(reencoded.json(), Payloads()).SerializeToString()


async def test_codec_is_for_operators_only(api: httpx.AsyncClient, auth) -> None:
    assert (await api.post("/codec/decode", json={"payloads": []})).status_code == 401
    forbidden = await api.post("/codec/decode", json={"payloads": []}, headers=auth("merchant", "mer_1"))
    assert forbidden.status_code == 403


async def test_codec_answers_the_temporal_ui_origin_for_cors(api: httpx.AsyncClient, stack_settings) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": stack_settings.ui_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == stack_settings.ui_origin
    stranger = await api.options(
        "/codec/decode", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in stranger.headers


async def test_garbage_payloads_are_a_400_in_the_envelope(api: httpx.AsyncClient, auth) -> None:
    bad = {
        "payloads": [
            {"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "bm9wZQ=="}, "data": "AAAA"}
        ]
    }
    response = await api.post("/codec/decode", json=bad, headers=auth("operator"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "undecodable_payload"
