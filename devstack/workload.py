"""The seeded workload of a chaos run or a drill: which payments, refunds and payouts it makes, what
each must end as, the client that drives them through the HTTP API, retrying like a real client, the
users and merchants it pays between, the wait until it has all settled, and the checks of what it
expected (each payment's end state, each payout's, every HTTP answer)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devstack.money_checks import Check, StripeState, payout_transfers
from devstack.throwaway import Stack
from payments.api.auth import Role, mint_token
from payments.schema.tables import OutboxEvent, Payout, Refund, Transaction

# Scenario: weight in the mix.
KINDS = {
    "confirm": 20,
    "confirm_partial": 10,
    "cancel": 10,
    "decline": 8,
    "decline_retry": 10,  # declined, then another card on the same payment: captured at once
    "saved_card": 10,  # paid with the user's card on file, then captured
    "left_authorized": 10,
    "key_reused": 10,
    "refund_partial": 12,
    "refund_full": 10,
    "refund_race": 10,
}
RETRIED = {429, 500, 502, 503, 504}  # what a client retries (with the same key); anything else is an answer
CALL_DEADLINE = 120.0  # seconds a client keeps retrying one call before it gives up
BROKEN_MERCHANT = 0  # its connected account is closed at Stripe, so its payouts must fail
IN_FLIGHT = {"pending", "requires_action"}
# POST /merchants answers 202 once onboarding outlasts its wait (10 s, easily passed on a loaded
# machine); set-up then polls the merchant, as a client would, until its connected account is open.
MERCHANT_READY_WITHIN = 120.0


@dataclass(frozen=True)
class Expected:
    status: str
    captured: int
    refunded: int


@dataclass(frozen=True)
class PaymentPlan:
    number: int
    kind: str
    user: int
    merchant: int
    amount: int
    inits: int  # identical inits sent at once on one key

    @property
    def key(self) -> str:
        return f"chaos-{self.number}"

    @property
    def card(self) -> str:
        return "pm_card_chargeDeclined" if self.kind in ("decline", "decline_retry") else "pm_card_visa"

    @property
    def capture(self) -> int | None:
        """The amount to confirm (None: no confirm)."""
        if self.kind in ("cancel", "decline", "left_authorized"):
            return None
        return self.amount * 3 // 5 if self.kind == "confirm_partial" else self.amount

    @property
    def refunds(self) -> tuple[int, ...]:
        """Refund amounts, in order; the two of `refund_race` are sent at once and only one fits."""
        return {
            "refund_partial": (self.amount // 3,),
            "refund_full": (self.amount,),
            "refund_race": (self.amount * 3 // 5, self.amount * 3 // 5),
        }.get(self.kind, ())

    @property
    def expected(self) -> Expected:
        refunded = self.refunds[0] if self.refunds else 0
        if self.kind == "decline":
            return Expected("declined", 0, 0)  # open: the customer may still try another card
        if self.kind == "cancel":
            return Expected("canceled", 0, 0)
        if self.kind == "left_authorized":
            return Expected("authorized", 0, 0)
        captured = self.capture or 0
        status = "confirmed" if not refunded else "refunded" if refunded == captured else "partially_refunded"
        return Expected(status, captured, refunded)


@dataclass(frozen=True)
class PayoutPlan:
    number: int
    merchant: int
    amount: int
    after: int  # starts once this many payments have started

    @property
    def key(self) -> str:
        return f"chaos-payout-{self.number}"

    @property
    def expected_status(self) -> str:
        return "failed" if self.merchant == BROKEN_MERCHANT else "paid"


@dataclass(frozen=True)
class Plan:
    seed: int
    users: int
    merchants: int
    payments: list[PaymentPlan]
    payouts: list[PayoutPlan]

    def operations(self) -> list[PaymentPlan | PayoutPlan]:
        """Payments in order, each payout slotted in after the payment it waits for."""
        ops: list[PaymentPlan | PayoutPlan] = []
        for payment in self.payments:
            ops.append(payment)
            ops.extend(p for p in self.payouts if p.after == payment.number)
        return ops


def make_plan(seed: int, count: int) -> Plan:
    rng = random.Random(seed)  # noqa: S311 (a replayable run, not cryptography)
    users, merchants = max(4, count // 8), max(3, min(8, count // 50))
    kinds, weights = list(KINDS), list(KINDS.values())
    payments = [
        PaymentPlan(
            number=i,
            kind=rng.choices(kinds, weights)[0],
            user=rng.randrange(users),
            merchant=rng.randrange(merchants),
            amount=rng.randrange(500, 20_000),
            inits=rng.choice((1, 1, 1, 2, 3)),
        )
        for i in range(count)
    ]
    payouts = [  # round the merchants, so the broken one has payouts too
        PayoutPlan(i, i % merchants, rng.randrange(100, 1_000), rng.randrange(count // 4, count))
        for i in range(max(2, count // 20))
    ]
    return Plan(seed, users, merchants, payments, payouts)


@dataclass
class Tally:
    """What the clients saw: answers by status, and what was accepted (the checks' expectations)."""

    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # the HTTP 500 answers
    gave_up: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    accepted: dict[int, str] = field(default_factory=dict)  # payment number -> tx id
    payouts: dict[str, PayoutPlan] = field(default_factory=dict)  # accepted payout id -> its plan
    payouts_refused: int = 0
    started: int = 0
    # Payments whose confirm's client walked away on a dropped connection (a lost-confirm fault):
    # it does not retry, and sends nothing more for that payment.
    walked_away: set[str] = field(default_factory=set)
    # For the recovery drills' RPO and RTO (wall clock): when each init was acknowledged, and each
    # 503 the clients met.
    accepted_at: dict[int, float] = field(default_factory=dict)
    unavailable_at: list[float] = field(default_factory=list)


class Client:
    """One HTTP client for the whole run: bounded retries with backoff on 429/5xx and lost
    connections, the same body (and so the same idempotency key) every time."""

    def __init__(self, http: httpx.AsyncClient, tally: Tally) -> None:
        self._http = http
        self._tally = tally

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> httpx.Response | None:
        deadline, attempt = time.monotonic() + CALL_DEADLINE, 0
        while True:
            try:
                response = await self._http.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                if body is not None and body.get("tx_id") in self._tally.walked_away:
                    return None
            else:
                self._tally.statuses[response.status_code] += 1
                if response.status_code == 503:
                    self._tally.unavailable_at.append(time.time())
                if response.status_code == 500:
                    self._tally.server_errors.append(f"{method} {path}: {response.text[:200]}")
                if response.status_code not in RETRIED:
                    return response
            if time.monotonic() > deadline:
                self._tally.gave_up.append(f"{method} {path} {body}")
                return None
            await asyncio.sleep(min(0.25 * 2**attempt, 4.0))  # client backoff
            attempt += 1


@dataclass
class Parties:
    users: list[str]
    merchants: list[str]
    saved_cards: list[str]  # each user's card on file
    token: Callable[[str, Role], str]  # (subject, role) -> bearer token

    def headers(self, subject: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, role)}"}


async def make_parties(stack: Stack, client: Client, emulator: httpx.AsyncClient, plan: Plan) -> Parties:
    """Users (each with a card on file) and merchants, made before any fault; the broken merchant's
    Stripe account is closed."""
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_chaos', 'operator')}"}

    async def create(
        path: str, body: dict[str, str], headers: dict[str, str] = operator, accepted: tuple[int, ...] = (201,)
    ) -> dict[str, str]:
        response = await client.call("POST", path, headers, body)
        if response is None or response.status_code not in accepted:
            raise RuntimeError(f"could not set up the run: POST {path} answered {response and response.text}")
        return dict(response.json())

    async def ready(merchant: dict[str, str]) -> dict[str, str]:
        """The merchant once its connected account is open: at once on 201; on 202 (onboarding still
        running) by polling GET /merchants/{id}, which answers 404 until the row is written."""
        deadline = time.monotonic() + MERCHANT_READY_WITHIN
        while merchant.get("payout_account") is None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"could not set up the run: merchant {merchant['id']} not ready after 202: {merchant}"
                )
            await asyncio.sleep(0.5)  # polling a condition with a deadline
            response = await client.call("GET", f"/merchants/{merchant['id']}", operator)
            if response is None or response.status_code not in (200, 404):
                raise RuntimeError(
                    f"could not set up the run: GET /merchants/{merchant['id']} answered {response and response.text}"
                )
            if response.status_code == 200:
                merchant = dict(response.json())
        return merchant

    users = [(await create("/users", {"name": f"Payer {i}"}))["id"] for i in range(plan.users)]
    merchants = [
        await ready(await create("/merchants", {"name": f"Shop {i}", "currency": "usd"}, accepted=(201, 202)))
        for i in range(plan.merchants)
    ]
    (await emulator.delete(f"/objects/{merchants[BROKEN_MERCHANT]['payout_account']}")).raise_for_status()
    token = partial(mint_token, stack.settings)

    async def save_card(user: str) -> str:
        """The user's card on file, for the saved_card payments."""
        body = {"card_token": "pm_card_visa", "idempotency_key": f"chaos-card-{user}"}
        return (await create(f"/users/{user}/cards", body, {"Authorization": f"Bearer {token(user, 'user')}"}))["id"]

    saved_cards = [await save_card(user) for user in users]
    return Parties(users, [m["id"] for m in merchants], saved_cards, token)


class Workload:
    def __init__(self, client: Client, parties: Parties, tally: Tally) -> None:
        self._client = client
        self._parties = parties
        self._tally = tally

    async def run(self, plan: Plan, concurrency: int) -> None:
        remaining = iter(plan.operations())

        async def lane() -> None:
            for op in remaining:
                if isinstance(op, PaymentPlan):
                    self._tally.started += 1
                    await self.payment(op)
                else:
                    await self.payout(op)

        await asyncio.gather(*(lane() for _ in range(concurrency)))

    def _expect(self, what: str, response: httpx.Response | None, *statuses: int) -> bool:
        if response is None:
            return False  # already counted as given up
        if response.status_code not in statuses:
            self._tally.unexpected.append(f"{what}: {response.status_code} {response.text[:200]}")
            return False
        return True

    async def payment(self, p: PaymentPlan) -> None:
        user = self._parties.users[p.user]
        as_user = self._parties.headers(user, "user")
        body = {
            "user_id": user,
            "merchant_id": self._parties.merchants[p.merchant],
            "amount": p.amount,
            "currency": "usd",
            "idempotency_key": p.key,
        } | ({"saved_card_id": self._parties.saved_cards[p.user]} if p.kind == "saved_card" else {"card_token": p.card})
        answers = await asyncio.gather(
            *(self._client.call("POST", "/payments/init", as_user, body) for _ in range(p.inits))
        )
        if not all(self._expect(f"init {p.key}", a, 200, 201) for a in answers):
            return
        ids = {a.json()["id"] for a in answers if a is not None}
        if len(ids) != 1:
            self._tally.unexpected.append(f"init {p.key}: {p.inits} inits on one key gave {sorted(ids)}")
            return
        tx_id = self._tally.accepted[p.number] = ids.pop()
        self._tally.accepted_at[p.number] = time.time()
        if p.kind == "key_reused":
            reused = await self._client.call("POST", "/payments/init", as_user, body | {"amount": p.amount + 1})
            self._expect(f"init {p.key} with another amount", reused, 422)
        if p.kind == "cancel":
            await self._state_change(f"/payments/{tx_id}/cancel", as_user, None, "canceled")
        if p.capture is not None:
            confirm = {"tx_id": tx_id} | ({"amount": p.capture} if p.capture != p.amount else {})
            if p.kind == "decline_retry":
                confirm["payment_method"] = {"card_token": "pm_card_mastercard"}
            if not await self._state_change("/payments/confirm", as_user, confirm, "confirmed"):
                return
        await self.refunds(p, tx_id)

    async def _state_change(self, path: str, headers: dict[str, str], body: dict[str, Any] | None, to: str) -> bool:
        """A confirm or cancel; a retry of one that went through may answer 409 with the new status."""
        response = await self._client.call("POST", path, headers, body)
        if response is not None and response.status_code == 409:
            if _code(response) == "payment_state_conflict" and response.json()["error"].get("status") == to:
                return True
        return self._expect(f"{path} {body}", response, 200)

    async def refunds(self, p: PaymentPlan, tx_id: str) -> None:
        as_merchant = self._parties.headers(self._parties.merchants[p.merchant], "merchant")

        async def refund(n: int, amount: int) -> httpx.Response | None:
            body = {"amount": amount, "idempotency_key": f"{p.key}-refund-{n}"}
            return await self._client.call("POST", f"/payments/{tx_id}/refunds", as_merchant, body)

        if p.kind == "refund_race":
            answers = await asyncio.gather(*(refund(n, amount) for n, amount in enumerate(p.refunds)))
            codes = sorted(a.status_code for a in answers if a is not None)
            if None not in answers and codes not in ([200, 409], [201, 409]):  # 200: a retry's replay
                self._tally.unexpected.append(f"racing refunds of {tx_id} answered {codes} (want one 2xx, one 409)")
            return
        for n, amount in enumerate(p.refunds):
            self._expect(f"refund {amount} of {tx_id}", await refund(n, amount), 200, 201)

    async def payout(self, p: PayoutPlan) -> None:
        merchant = self._parties.merchants[p.merchant]
        body = {"merchant_id": merchant, "amount": p.amount, "idempotency_key": p.key}
        response = await self._client.call(
            "POST", "/payouts/schedule", self._parties.headers(merchant, "merchant"), body
        )
        if response is not None and response.status_code == 409 and _code(response) == "insufficient_balance":
            self._tally.payouts_refused += 1  # not enough available yet: a refusal, not a fault
        elif self._expect(f"payout {p.key}", response, 202):
            assert response is not None
            self._tally.payouts[response.json()["id"]] = p


async def drive(stack: Stack, plan: Plan, tally: Tally, concurrency: int, *beside: Coroutine[Any, Any, None]) -> None:
    """Run the whole plan through the stack's API (its users and merchants made first), `concurrency`
    clients at once, with the `beside` coroutines (a fault to fire, a loss) running alongside."""
    async with (
        httpx.AsyncClient(base_url=stack.api, timeout=30) as http,
        httpx.AsyncClient(base_url=f"{stack.stripe_api_base()}/_emulator", timeout=10) as emulator,
    ):
        client = Client(http, tally)
        workload = Workload(client, await make_parties(stack, client, emulator, plan), tally)
        async with asyncio.TaskGroup() as group:
            group.create_task(workload.run(plan, concurrency))
            for coroutine in beside:
                group.create_task(coroutine)


def _code(response: httpx.Response) -> str | None:
    return response.json().get("error", {}).get("code")


def transfers(payouts: list[Payout], tally: Tally, stripe: StripeState) -> Check:
    """`payout_transfers`, and each payout the workload asked for ended as it expected."""
    check = payout_transfers(payouts, stripe)
    check.figures["refused (balance)"] = tally.payouts_refused
    rows = {p.id: p for p in payouts}
    for payout_id, planned in tally.payouts.items():
        payout = rows.get(payout_id)
        if payout is None:
            check.violations.append(f"accepted payout {payout_id} has no row")
        elif payout.status != planned.expected_status:
            check.violations.append(f"{payout.id}: {payout.status}, want {planned.expected_status}")
    return check


def end_states(plan: Plan, tally: Tally, txs: dict[str, Transaction]) -> Check:
    check = Check("end states", {"accepted inits": len(tally.accepted)})
    for payment in plan.payments:
        tx = txs.get(tally.accepted.get(payment.number, ""))
        if payment.number in tally.accepted and tx is None:
            check.violations.append(f"{payment.key}: accepted as {tally.accepted[payment.number]}, no row")
        if tx is None:
            continue
        seen = (tx.status, tx.amount_captured, tx.amount_refunded)
        want = payment.expected
        if tx.id in tally.walked_away:  # captured, then its client left: no refund was asked for
            want = Expected("confirmed", payment.capture or 0, 0)
        if seen != (want.status, want.captured, want.refunded):
            check.violations.append(f"{payment.key} ({payment.kind}) {tx.id}: {seen}, want {want}")
    statuses = Counter(tx.status for tx in txs.values())
    check.figures |= {f"status {status}": n for status, n in sorted(statuses.items())}
    check.figures["clients walked away"] = len(tally.walked_away)
    stuck = [tx.id for tx in txs.values() if tx.status in IN_FLIGHT]
    check.figures["stuck pending"] = len(stuck)
    check.violations += [f"{tx_id} stuck in pending" for tx_id in stuck]
    return check


def http(tally: Tally) -> Check:
    classes = Counter(f"HTTP {code // 100}xx" for code in tally.statuses.elements())
    check = Check("http", dict(sorted(classes.items())))
    check.figures |= {
        "HTTP 500": tally.statuses[500],
        "gave up": len(tally.gave_up),
        "unexpected": len(tally.unexpected),
    }
    check.violations += [f"HTTP 500 to {answer}" for answer in tally.server_errors]
    check.violations += [f"gave up after retries: {call}" for call in tally.gave_up]
    check.violations += [f"unexpected answer: {answer}" for answer in tally.unexpected]
    return check


async def _in_flight(session: AsyncSession) -> int:
    counts = [
        select(func.count()).select_from(Transaction).where(Transaction.status.in_(IN_FLIGHT)),
        select(func.count()).select_from(Refund).where(Refund.status == "pending"),
        select(func.count()).select_from(Payout).where(Payout.status.in_(("pending", "in_transit"))),
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None)),
    ]
    return sum([await session.scalar(c) or 0 for c in counts])


async def settle(sessions: async_sessionmaker[AsyncSession], within: float) -> None:
    """Until nothing is pending, in transit or unpublished, or `within` s (the checks then say what)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with sessions() as session:
            if await _in_flight(session) == 0:
                return
        await asyncio.sleep(0.5)  # polling a condition with a deadline
