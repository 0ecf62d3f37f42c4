"""A card number anywhere in a request is refused unread: not stored, not logged."""

import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PAN = "4242424242424242"


@pytest.mark.parametrize(
    "body",
    [
        {"name": PAN},
        {"name": f"Ada {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"},
        {"name": "Ada", "extra": {"deep": [PAN]}},
        {"name": "Ada", "amount": int(PAN)},
        {"name": "Ada \\u0034" + PAN[1:]},  # a JSON escape spelling the first digit
    ],
    ids=["field", "spaced", "nested-unknown-field", "number", "json-escape"],
)
async def test_card_numbers_are_refused_in_any_field(
    api: httpx.AsyncClient, auth, engine: AsyncEngine, log_file: Path, body: dict
) -> None:
    marker = f"guard-{uuid.uuid4().hex}"
    raw = httpx.Request("POST", "/", json=body).content.replace(b"\\\\u0034", b"\\u0034")
    headers = auth("operator") | {"content-type": "application/json", "x-request-id": marker}
    response = await api.post("/users", content=raw, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "card_data_rejected"
    async with engine.connect() as conn:
        stored = await conn.execute(text("SELECT count(*) FROM users WHERE name LIKE '%4242%'"))
        assert stored.scalar_one() == 0
    logs = log_file.read_text()
    refusals = [json.loads(line) for line in logs.splitlines() if marker in line]
    assert any(r["event"] == "card_data_rejected" for r in refusals)  # the refusal was logged ...
    assert PAN not in logs and "4242 4242" not in logs  # ... without the number


async def test_card_numbers_in_the_query_string_are_refused(api: httpx.AsyncClient, auth) -> None:
    response = await api.get(f"/healthz?card={PAN}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "card_data_rejected"


async def test_ids_that_merely_contain_digits_are_accepted(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "req_ddb18e28ad794675845404034f911a70"}, headers=auth("operator"))
    assert response.status_code == 201


async def test_an_oversized_body_is_413(api: httpx.AsyncClient, auth) -> None:
    response = await api.post("/users", json={"name": "x" * 1_100_000}, headers=auth("operator"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
