"""`make bench`: init + confirm through the HTTP API at a fixed concurrency, then on-demand payouts,
then the same payment count on the bare-Temporal ceiling; prints payments/s, latency percentiles
and our share of the ceiling.

    make bench                          # a throwaway stack on free ports
    make bench BENCH_ARGS="--api http://127.0.0.1:8000 --count 1000 --concurrency 16"
    make bench BENCH_ARGS="--webhooks"  # then again for a merchant with one webhook endpoint (all events)
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from api.auth import mint_token
from bench import ceiling
from bench.stack import Stack, running_stack
from bench.stats import Timings
from bench.webhook_receiver import receiving_webhooks
from config.temporal import connect

WARMUP = 10


@dataclass
class Run:
    """One measured run: `count` payments, `concurrency` lanes, each lane init then confirm."""

    name: str
    init: Timings
    confirm: Timings
    wall: float = 0.0
    failures: int = 0

    @classmethod
    def named(cls, name: str) -> Run:
        return cls(name, Timings(f"{name} init"), Timings(f"{name} confirm"))

    @property
    def rate(self) -> float:
        return len(self.confirm.seconds) / self.wall

    def report(self) -> str:
        head = f"{self.name}: {len(self.confirm.seconds)} payments in {self.wall:.1f} s = {self.rate:.1f} payments/s"
        return "\n".join(
            [head + (f", {self.failures} FAILED" if self.failures else ""), self.init.line(), self.confirm.line()]
        )


Payment = Callable[[Run], Awaitable[None]]


async def drive(run: Run, payment: Payment, count: int, concurrency: int) -> Run:
    remaining = iter(range(count))

    async def lane() -> None:
        for _ in remaining:
            try:
                await payment(run)
            except Exception as exc:  # counted and reported; the run goes on
                run.failures += 1
                if run.failures <= 3:
                    print(f"  a payment failed: {exc!r}", flush=True)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    run.wall = time.perf_counter() - started
    return run


async def timed(timings: Timings, call: Awaitable[httpx.Response], expect: int) -> httpx.Response:
    started = time.perf_counter()
    response = await call
    timings.seconds.append(time.perf_counter() - started)
    if response.status_code != expect:
        raise RuntimeError(f"{response.request.url.path} answered {response.status_code}: {response.text}")
    return response


def _created(response: httpx.Response) -> str:
    if response.status_code != 201:
        raise RuntimeError(f"{response.request.url.path} answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


async def payout_latency(stack: Stack, api: httpx.AsyncClient, merchant: str, calls: int) -> Timings:
    """On-demand payouts of 100 each, one after another (they serialize on the merchant anyway):
    the time until the API answers 202 with the funds reserved."""
    headers = {"Authorization": f"Bearer {mint_token(stack.settings, merchant, 'merchant')}"}
    timings = Timings("on-demand payout")
    for _ in range(calls):
        body = {"merchant_id": merchant, "amount": 100}
        await timed(timings, api.post("/payouts/schedule", json=body, headers=headers), 202)
    return timings


async def http_payments(stack: Stack, api: httpx.AsyncClient, merchant: str, concurrency: int) -> Payment:
    """One user per lane (the rate limit is per subject, as real traffic is), one merchant."""
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_bench', 'operator')}"}
    users = [
        _created(await api.post("/users", json={"name": f"Payer {i}"}, headers=operator)) for i in range(concurrency)
    ]
    free: asyncio.Queue[str] = asyncio.Queue()
    for user in users:
        free.put_nowait(user)

    async def payment(run: Run) -> None:
        user = await free.get()
        try:
            headers = {"Authorization": f"Bearer {mint_token(stack.settings, user, 'user')}"}
            body = {
                "user_id": user,
                "merchant_id": merchant,
                "amount": 1999,
                "currency": "usd",
                "card_token": "pm_card_visa",
                "idempotency_key": uuid.uuid4().hex,
            }
            tx = (await timed(run.init, api.post("/payments/init", json=body, headers=headers), 201)).json()
            await timed(run.confirm, api.post("/payments/confirm", json={"tx_id": tx["id"]}, headers=headers), 200)
        finally:
            free.put_nowait(user)

    return payment


async def with_webhook_endpoint(stack: Stack, api: httpx.AsyncClient, args: argparse.Namespace) -> None:
    """The same run for another merchant with one endpoint subscribed to every event: delivery runs
    in the worker, so init and confirm should not move."""
    operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_bench', 'operator')}"}
    merchant = _created(await api.post("/merchants", json={"name": "Hooked shop", "currency": "usd"}, headers=operator))
    with receiving_webhooks() as receiver:
        endpoint = {"url": receiver.url, "enabled_events": ["*"]}
        _created(await api.post(f"/merchants/{merchant}/webhook_endpoints", json=endpoint, headers=operator))
        payment = await http_payments(stack, api, merchant, args.concurrency)
        await drive(Run.named("warm-up"), payment, WARMUP, args.concurrency)
        hooked = await drive(Run.named("payments API, 1 webhook endpoint"), payment, args.count, args.concurrency)
        print(hooked.report(), flush=True)
        print(f"webhooks received by the end of the run: {receiver.count} of {2 * (args.count + WARMUP)}", flush=True)


async def main(args: argparse.Namespace) -> None:
    with running_stack(args.api) as stack:
        api = httpx.AsyncClient(
            base_url=stack.api, timeout=30, limits=httpx.Limits(max_connections=2 * args.concurrency)
        )
        operator = {"Authorization": f"Bearer {mint_token(stack.settings, 'op_bench', 'operator')}"}
        merchant = _created(
            await api.post("/merchants", json={"name": "Bench shop", "currency": "usd"}, headers=operator)
        )
        payment = await http_payments(stack, api, merchant, args.concurrency)
        await drive(Run.named("warm-up"), payment, WARMUP, args.concurrency)
        ours = await drive(Run.named("payments API"), payment, args.count, args.concurrency)
        print(ours.report(), flush=True)
        print((await payout_latency(stack, api, merchant, args.payouts)).line(), flush=True)
        if args.webhooks:
            await with_webhook_endpoint(stack, api, args)
            again = await drive(Run.named("payments API again, no endpoint"), payment, args.count, args.concurrency)
            print(again.report(), flush=True)  # what the order alone (a fuller database, a warmer stack) costs

        client = await connect(stack.settings)
        queue = f"bench-ceiling-{uuid.uuid4().hex}"
        async with ceiling.ceiling_worker(client, queue):

            async def bare(run: Run) -> None:
                started = time.perf_counter()
                workflow_id = await ceiling.init(client, queue)
                run.init.seconds.append(time.perf_counter() - started)
                started = time.perf_counter()
                await ceiling.confirm(client, workflow_id)
                run.confirm.seconds.append(time.perf_counter() - started)

            await drive(Run.named("warm-up"), bare, WARMUP, args.concurrency)
            top = await drive(Run.named("ceiling"), bare, args.count, args.concurrency)
        print(top.report())
        print(f"our throughput is {100 * ours.rate / top.rate:.0f} % of the ceiling", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="a running stack's API (default: start a throwaway stack)")
    parser.add_argument("--count", type=int, default=300, help="payments per run")
    parser.add_argument("--concurrency", type=int, default=10, help="payments in flight at once")
    parser.add_argument("--payouts", type=int, default=100, help="on-demand payouts timed after the payments")
    parser.add_argument(
        "--webhooks", action="store_true", help="then the same run for a merchant with a webhook endpoint (all events)"
    )
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
