"""Who sees what, history pagination, and bad input answered in the envelope with nothing written."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payments.schema.tables import Transaction
from tests.integration.conftest import Parties
from tests.services import fresh_key


async def test_a_user_pays_only_as_itself(parties: Parties, auth) -> None:
    body = {
        "user_id": parties.user_id,
        "merchant_id": parties.merchant_id,
        "amount": 100,
        "currency": "usd",
        "card_token": "pm_card_visa",
        "idempotency_key": "x",
    }
    for headers in (auth("user", "usr_someone_else"), parties.as_merchant, auth("operator")):
        assert (await parties.api.post("/payments/init", json=body, headers=headers)).status_code == 403


async def test_others_payments_answer_404(parties: Parties, auth) -> None:
    tx = await parties.authorized()
    assert (await parties.api.get(f"/payments/{tx['id']}", headers=parties.as_merchant)).status_code == 200
    assert (await parties.api.get(f"/payments/{tx['id']}", headers=auth("operator"))).status_code == 200
    for stranger in (auth("user", "usr_other"), auth("merchant", "mer_other")):
        response = await parties.api.get(f"/payments/{tx['id']}", headers=stranger)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        confirm = await parties.api.post("/payments/confirm", json={"tx_id": tx["id"]}, headers=stranger)
        assert confirm.status_code == 404
    assert (await parties.get(tx["id"]))["status"] == "authorized"  # nobody else moved it


async def test_history_is_newest_first_with_cursor_pagination(parties: Parties, auth) -> None:
    ids = [(await parties.authorized(100 + i))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (
            await parties.api.get(f"/transactions/{parties.user_id}", params=params, headers=parties.as_user)
        ).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert (await parties.api.get(f"/transactions/{parties.user_id}", headers=auth("operator"))).status_code == 200
    assert (await parties.api.get(f"/transactions/{parties.user_id}", headers=auth("user", "usr_x"))).status_code == 404
    too_many = await parties.api.get(f"/transactions/{parties.user_id}", params={"limit": 101}, headers=parties.as_user)
    assert too_many.status_code == 422
    bad_cursor = await parties.api.get(
        f"/transactions/{parties.user_id}", params={"cursor": "nope"}, headers=parties.as_user
    )
    assert bad_cursor.status_code == 400


@pytest.mark.parametrize(
    "override, status, code",
    [
        ({"card_token": "card_1234"}, 422, "validation_error"),
        ({"card_token": "4242424242424242"}, 400, "card_data_rejected"),
        ({"amount": 0}, 422, "validation_error"),
        ({"amount": 10.5}, 422, "validation_error"),
        ({"currency": "US"}, 422, "validation_error"),
        ({"currency": "eur"}, 422, "currency_not_accepted"),
        ({"merchant_id": "mer_missing"}, 422, "unknown_party"),
        ({"surprise": 1}, 422, "validation_error"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    parties: Parties, engine: AsyncEngine, override: dict, status: int, code: str
) -> None:
    key = fresh_key()
    response = await parties.init(key=key, **override)
    assert response.status_code == status and response.json()["error"]["code"] == code
    async with engine.connect() as conn:
        query = select(func.count()).where(Transaction.idempotency_key == key)
        assert (await conn.execute(query)).scalar_one() == 0


async def test_confirming_an_unknown_payment_is_404(parties: Parties) -> None:
    assert (await parties.confirm("tx_missing")).status_code == 404
