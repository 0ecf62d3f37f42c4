"""Webhook verification and dedupe, the outbox relay to Redis Streams, the ledger's totals,
and no card token or secret in history, search attributes or logs."""

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from payments.activities.ledger import platform_fee
from payments.config.settings import Settings
from payments.schema.database import session_factory
from payments.schema.tables import Merchant, OutboxEvent, Payout, Transaction, TransferReversal
from payments.workers.outbox_relay import MARKER_BLOCK, MARKER_SECONDS, REFRESH_SECONDS, SCRIPT_EVENTS, OutboxRelay
from payments.workflows.payment import workflow_id
from stripe_emulator.webhooks import signature_header
from tests.integration.conftest import Parties
from tests.services import fresh_key


def _event(event_id: str, event_type: str = "payment_intent.succeeded") -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "api_version": "2026-10-28",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_x", "object": "payment_intent", "status": "succeeded"}},
        }
    )


async def test_a_webhook_with_a_bad_signature_is_400(api: httpx.AsyncClient) -> None:
    payload = _event(f"evt_{fresh_key()}")
    forged = signature_header(payload, "whsec_not_ours")
    response = await api.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": forged})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"
    missing = await api.post("/webhooks/stripe", content=payload)
    assert missing.status_code == 400


async def test_a_repeated_webhook_is_acknowledged_and_ignored(api: httpx.AsyncClient, stack_settings: Settings) -> None:
    payload = _event(f"evt_{fresh_key()}")
    headers = {"Stripe-Signature": signature_header(payload, stack_settings.stripe_webhook_secret.get_secret_value())}
    first = await api.post("/webhooks/stripe", content=payload, headers=headers)
    again = await api.post("/webhooks/stripe", content=payload, headers=headers)
    assert first.json() == {"received": True, "duplicate": False}
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}


async def test_the_relay_publishes_each_event_once_in_order(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    tx = await parties.captured(1000)
    redis = Redis.from_url(stack_settings.redis_url or "")
    stream = f"test.events.{fresh_key()}"
    relay = OutboxRelay(session_factory(engine), redis, stream=stream)
    try:
        while await relay.publish_batch():  # other tests' workflows may still be adding rows meanwhile
            pass
        entries = await redis.xrange(stream)
    finally:
        await redis.delete(stream)
        await redis.aclose()
    mine = [fields for _, fields in entries if json.loads(fields[b"payload"]).get("tx_id") == tx["id"]]
    assert [f[b"type"] for f in mine] == [b"payment.authorized", b"payment.confirmed"]
    ids = [int(f[b"event_id"]) for _, f in entries]
    assert len(ids) == len(set(ids))  # each once; the order is asserted for this payment's own events
    async with engine.connect() as conn:
        unsent = select(func.count()).where(OutboxEvent.published_at.is_(None), OutboxEvent.aggregate_id == tx["id"])
        assert (await conn.execute(unsent)).scalar_one() == 0


async def test_the_ledger_balances_and_each_payable_is_captures_less_fees_refunds_payouts_and_disputes(
    parties: Parties, engine: AsyncEngine
) -> None:
    refunded = await parties.captured(1000, capture=999)
    assert (await parties.refund(refunded["id"], 333)).status_code == 201
    await parties.captured(2501)
    # One snapshot for every read: other tests move money meanwhile, and each of their moves is
    # one database transaction, so the books agree with the rows in any snapshot, not across two.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        sums = await conn.execute(text("SELECT currency, sum(amount) FROM ledger_entries GROUP BY currency"))
        assert all(total == 0 for _, total in sums)
        merchants = (await conn.execute(select(Merchant.id, Merchant.fee_bps))).all()
        txs = (
            await conn.execute(
                select(Transaction.merchant_id, Transaction.amount_captured, Transaction.amount_refunded)
            )
        ).all()
        paid_out: dict[str, int] = dict(
            (
                await conn.execute(
                    select(Payout.merchant_id, func.sum(Payout.amount))
                    .where(Payout.status.in_(("in_transit", "paid")))
                    .group_by(Payout.merchant_id)
                )
            ).all()
        )
        # A dispute takes its amount and fee once Stripe withdrew them (an inquiry takes nothing), and
        # gives the amount back when Stripe reinstated it; a reversal recovers a deficit.
        disputed: dict[str, int] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT merchant_id, coalesce(sum(amount + fee) FILTER (WHERE withdrawn_at IS NOT NULL), 0) "
                        "- coalesce(sum(amount) FILTER (WHERE reinstated_at IS NOT NULL), 0) "
                        "FROM disputes GROUP BY merchant_id"
                    )
                )
            ).all()
        )
        recovered: dict[str, int] = dict(
            (
                await conn.execute(
                    select(TransferReversal.merchant_id, func.sum(TransferReversal.amount))
                    .where(TransferReversal.status == "reversed")
                    .group_by(TransferReversal.merchant_id)
                )
            ).all()
        )
        payables: dict[str, int] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT a.code, -sum(e.amount) FROM ledger_entries e "
                        "JOIN ledger_accounts a ON a.id = e.account_id "
                        "WHERE a.code LIKE 'merchant_payable:%' GROUP BY a.code"
                    )
                )
            ).all()
        )
    for merchant_id, fee_bps in merchants:
        expected = (
            sum(
                _net_of_refunds(captured, platform_fee(captured, fee_bps), refunded_amount)
                for m, captured, refunded_amount in txs
                if m == merchant_id
            )
            - paid_out.get(merchant_id, 0)
            - disputed.get(merchant_id, 0)
            + recovered.get(merchant_id, 0)
        )
        assert payables.get(f"merchant_payable:{merchant_id}", 0) == expected, merchant_id
    # 999 captured, fee 24; 333 refunded, of which the platform returns 24 * 333 // 999 = 8.
    assert payables[f"merchant_payable:{parties.merchant_id}"] == (999 - 24 - (333 - 8)) + (2501 - 62)


def _net_of_refunds(captured: int, fee: int, refunded: int) -> int:
    """The merchant's share of one payment: the capture less the fee, less the refunds less the
    share of the fee the platform gave back."""
    return captured - fee - (refunded - fee * refunded // captured if captured else 0)


async def test_no_card_token_in_history_search_attributes_or_logs(
    parties: Parties, temporal_env: WorkflowEnvironment, log_file: Path
) -> None:
    key = fresh_key()
    tx = (await parties.init(1000, key=key, card="tok_visa")).json()
    await parties.confirm(tx["id"])
    raw = await Client.connect(temporal_env.client.service_client.config.target_host)
    handle = raw.get_workflow_handle(workflow_id(parties.user_id, key))
    history = await handle.fetch_history()
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert b"tok_visa" not in stored  # ids may show (workflow id, search attributes); the token never
    assert stored.count(b"binary/encrypted") >= 3  # inputs, results and update payloads are ciphertext
    attributes = (await handle.describe()).typed_search_attributes
    values = {pair.key.name: pair.value for pair in attributes}
    assert values["PaymentStatus"] == "confirmed" and values["AmountMinor"] == 1000
    assert not any("tok_" in str(v) for v in values.values())
    assert "tok_visa" not in log_file.read_text()


def _events(*ids: int) -> list[OutboxEvent]:
    """Outbox rows as the relay reads them, never stored: their ids alone place their marker bits."""
    at = datetime.now(UTC)
    return [OutboxEvent(id=i, type="test.event", aggregate_id=f"agg_{i}", payload={}, created_at=at) for i in ids]


@asynccontextmanager
async def _relay_on_a_stream_of_its_own(
    engine: AsyncEngine, settings: Settings, clock: Callable[[], float] = time.time
) -> AsyncIterator[tuple[OutboxRelay, Redis, str]]:
    redis = Redis.from_url(settings.redis_url or "")
    stream = f"test.events.{fresh_key()}"
    try:
        yield OutboxRelay(session_factory(engine), redis, stream=stream, clock=clock), redis, stream
    finally:
        await redis.delete(stream, *[key async for key in redis.scan_iter(f"{stream}:published-bits:*")])
        await redis.aclose()


async def test_a_relay_that_dies_before_marking_its_batch_publishes_nothing_twice(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    """XADD done, then the relay died before its rows were marked published: the next relay sends
    them again, and the stream still holds each event once; a Redis that lost its scripts meanwhile
    (restarted) answers NOSCRIPT, and the relay loads its script and sends the batch again."""
    tx = await parties.captured(1000)
    async with _relay_on_a_stream_of_its_own(engine, stack_settings) as (relay, redis, stream):
        while await relay.publish_batch():
            pass
        async with engine.begin() as conn:  # the mark that a killed relay never committed
            await conn.execute(
                update(OutboxEvent).where(OutboxEvent.aggregate_id == tx["id"]).values(published_at=None)
            )
        await redis.script_flush()
        while await relay.publish_batch():
            pass
        entries = await redis.xrange(stream)
    published = [f[b"type"] for _, f in entries if json.loads(f[b"payload"]).get("tx_id") == tx["id"]]
    assert published == [b"payment.authorized", b"payment.confirmed"]


async def test_marker_bits_across_bitmaps_add_each_event_once_in_id_order(
    engine: AsyncEngine, stack_settings: Settings
) -> None:
    """Events on both sides of a bitmap's edge and in a third bitmap: sent again with new ones among
    them, only the new ones are added, in id order; each bitmap lives an hour past its last write."""
    edge = MARKER_BLOCK
    async with _relay_on_a_stream_of_its_own(engine, stack_settings) as (relay, redis, stream):
        first = await relay.add_once(_events(edge - 1, edge, 3 * edge + 5))
        again = await relay.add_once(_events(7, edge - 1, edge, edge + 1, 3 * edge + 5, 3 * edge + 6))
        entries = await redis.xrange(stream)
        ttls = [await redis.ttl(key) async for key in redis.scan_iter(f"{stream}:published-bits:*")]
    assert (first, again) == (3, 3)
    assert [int(f[b"event_id"]) for _, f in entries] == [edge - 1, edge, 3 * edge + 5, 7, edge + 1, 3 * edge + 6]
    assert len(ttls) == 3 and all(MARKER_SECONDS - 100 < ttl <= MARKER_SECONDS for ttl in ttls)


async def test_a_bitmap_is_renewed_once_a_period_and_at_once_when_redis_lost_it(
    engine: AsyncEngine, stack_settings: Settings
) -> None:
    now = [1_000 * REFRESH_SECONDS + 1.0]
    async with _relay_on_a_stream_of_its_own(engine, stack_settings, clock=lambda: now[0]) as (relay, redis, stream):
        bitmap = f"{stream}:published-bits:0"
        await relay.add_once(_events(1))
        assert MARKER_SECONDS - 100 < await redis.ttl(bitmap) <= MARKER_SECONDS
        await redis.expire(bitmap, 600)  # as if renewed long ago
        now[0] += REFRESH_SECONDS - 2  # the same period: no EXPIRE
        await relay.add_once(_events(2))
        assert await redis.ttl(bitmap) <= 600
        now[0] += 1  # the next period: renewed at its first write
        await relay.add_once(_events(3))
        assert await redis.ttl(bitmap) > 600
        renewed = await redis.ttl(bitmap)
        assert await relay.add_once(_events(1, 2, 3)) == 0  # all sent already: nothing added, not renewed
        assert await redis.ttl(bitmap) <= renewed
        await redis.delete(bitmap)  # Redis lost it within the period
        await relay.add_once(_events(4))
        assert MARKER_SECONDS - 100 < await redis.ttl(bitmap) <= MARKER_SECONDS
        assert [int(f[b"event_id"]) for _, f in await redis.xrange(stream)] == [1, 2, 3, 4]


async def test_a_batch_larger_than_a_script_is_added_once_in_several(
    engine: AsyncEngine, stack_settings: Settings
) -> None:
    count = 2 * SCRIPT_EVENTS + 500  # one bitmap: Lua's unpack would refuse its bits in one call
    async with _relay_on_a_stream_of_its_own(engine, stack_settings) as (relay, redis, stream):
        added = [await relay.add_once(_events(*range(1, count + 1))) for _ in range(2)]
        length = await redis.xlen(stream)
    assert (added, length) == ([count, 0], count)


async def test_a_script_that_fails_part_way_marks_none_of_its_events(
    engine: AsyncEngine, stack_settings: Settings
) -> None:
    """The stream's key holds a string: the first XADD fails. Once it is a stream again, every
    event of the batch is added (a bit set before its XADD would have lost the events after it)."""
    async with _relay_on_a_stream_of_its_own(engine, stack_settings) as (relay, redis, stream):
        await redis.set(stream, "not a stream")
        with pytest.raises(ResponseError):
            await relay.add_once(_events(1, 2, 3))
        await redis.delete(stream)
        assert await relay.add_once(_events(1, 2, 3)) == 3


async def test_republish_sends_the_events_from_a_time_into_an_emptied_stream_once_and_none_before_it(
    parties: Parties, engine: AsyncEngine, stack_settings: Settings
) -> None:
    """Redis lost its data (the stream and the relay's markers): `payments events republish --since`
    finds the first event at or after the time by bisecting the ids and adds the events from there,
    each once however often it runs; an event from before the time is not sent."""
    before = await parties.captured(1000)
    async with engine.connect() as conn:
        since = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    after = await parties.captured(1000)
    async with _relay_on_a_stream_of_its_own(engine, stack_settings) as (relay, redis, stream):
        read, added = await relay.republish(since)
        await relay.republish(since)
        entries = await redis.xrange(stream)
    by_tx: dict[str, list[bytes]] = {}
    for _, fields in entries:
        by_tx.setdefault(json.loads(fields[b"payload"]).get("tx_id"), []).append(fields[b"type"])
    assert by_tx.get(before["id"]) is None
    assert by_tx[after["id"]] == [b"payment.authorized", b"payment.confirmed"]
    assert read >= added >= 2
