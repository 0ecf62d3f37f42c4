"""`make bench`: open-loop payments (init + confirm over HTTP, Poisson arrivals, latency from the
scheduled start) on a throwaway stack:

1. a run at the seed's average rate (--rate, --duration) with the CPU and round trips per payment of
   each process, and the run's course window by window (latency, CPU per payment of each process,
   the API's and worker's memory: bench/course.py);
2. on-demand payout latency under the same background load;
3. a step run raising the rate until p99 of either call passes 500 ms or a payment fails, then
   refining between the last rate that held and that one (--step-refinements): the knee;
4. the same measured run and step run on the skeleton of this design (bench/ceiling.py), its CPU
   per payment per process beside ours in the same run: ours as a multiple of it, our knee as a share;
   then rounds of ours and the skeleton in turn (--rounds, --round-seconds), whose ratio the
   machine's drift over the run moves less than that of one run of each.

    make bench                                   # ours, then the skeleton: steps of 30 s each
    make bench BENCH_ARGS="--rate 12 --duration 300"          # the issue's 5-minute target
    make bench BENCH_ARGS="--rate 12 --duration 3600 --step-seconds 0"   # a long run: the memory curve
    make bench BENCH_ARGS="--api-workers 2 --workers 2 --kill-worker-at 20 --step-seconds 0"  # scale-out
    make bench BENCH_ARGS="--webhooks --step-seconds 0"   # then a merchant with one webhook endpoint

With more than one worker (--workers), the run ends with the chaos run's money checks (one
PaymentIntent per payment, at most one capture, a ledger matching the captures). With
--api-workers N, HTTP counts and the cache hit ratio come from whichever API process answered
/metrics (each process counts its own).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
import uuid

import httpx
from redis.asyncio import Redis

from bench import ceiling, costs, course, scale
from bench.openloop import HEADER, Payment, Run, Steps, open_loop, row, step
from bench.stats import Timings, loadavg, machine_speed
from bench.webhook_receiver import receiving_webhooks
from devstack.throwaway import Stack, running_stack
from payments.api.auth import mint_token
from payments.config.temporal import connect
from payments.schema.database import create_engine

USERS = 50  # payers the load is spread over (each its own rate-limit bucket, as real traffic is)
# POST /merchants answers 202 once onboarding outlasts its wait (10 s, easily passed on a loaded
# machine); the merchant is then polled, as a client would, until its connected account is open.
MERCHANT_READY_WITHIN = 120.0
# The throwaway stack's rate limit is lifted: the bench measures the system, not the limiter.
STACK_SETTINGS = {"PAYMENTS_RATE_LIMIT_PER_SECOND": "100000", "PAYMENTS_RATE_LIMIT_BURST": "100000"}


def bench_key() -> str:
    """A fresh idempotency key with no long run of digits: a hex uuid's digits now and then pass the
    Luhn check as a card number would, and the card-data guard refuses the payment (a failure that
    ended a step run)."""
    return base64.b32encode(uuid.uuid4().bytes).decode().rstrip("=").lower()


def _created(response: httpx.Response) -> str:
    if response.status_code != 201:
        raise RuntimeError(f"{response.request.url.path} answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


async def _merchant(api: httpx.AsyncClient, operator: str, name: str) -> str:
    """A merchant whose connected account is open: at once on 201; on 202 (onboarding still running)
    by polling GET /merchants/{id}, which answers 404 until the onboarding workflow writes the row."""
    headers = {"Authorization": f"Bearer {operator}"}
    response = await api.post("/merchants", json={"name": name, "currency": "usd"}, headers=headers)
    if response.status_code not in (201, 202):
        raise RuntimeError(f"/merchants answered {response.status_code}: {response.text}")
    merchant = response.json()
    deadline = time.monotonic() + MERCHANT_READY_WITHIN
    while merchant.get("payout_account") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"merchant {merchant['id']} not ready after 202: {merchant}")
        await asyncio.sleep(0.5)  # polling a condition with a deadline
        response = await api.get(f"/merchants/{merchant['id']}", headers=headers)
        if response.status_code not in (200, 404):
            raise RuntimeError(f"/merchants/{merchant['id']} answered {response.status_code}: {response.text}")
        if response.status_code == 200:
            merchant = response.json()
    return str(merchant["id"])


async def _call(api: httpx.AsyncClient, path: str, body: dict[str, object], token: str, expect: int) -> httpx.Response:
    response = await api.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != expect:
        try:  # the envelope's code, so failures of one kind count together
            what = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            what = response.text[:100]
        raise RuntimeError(f"{path} {response.status_code} {what}")
    return response


async def http_payments(stack: Stack, api: httpx.AsyncClient, merchant: str) -> Payment:
    """Payments by USERS payers, round robin, to one merchant."""
    operator = mint_token(stack.settings, "op_bench", "operator")
    users = [
        _created(await api.post("/users", json={"name": f"Payer {i}"}, headers={"Authorization": f"Bearer {operator}"}))
        for i in range(USERS)
    ]
    tokens = [(user, mint_token(stack.settings, user, "user")) for user in users]
    turn = iter(range(10**12))

    async def payment(run: Run, scheduled: float) -> None:
        user, token = tokens[next(turn) % len(tokens)]
        body = {
            "user_id": user,
            "merchant_id": merchant,
            "amount": 1999,
            "currency": "usd",
            "card_token": "pm_card_visa",
            "idempotency_key": bench_key(),
        }
        tx = (await _call(api, "/payments/init", body, token, 201)).json()
        confirming = time.perf_counter()
        run.init.seconds.append(confirming - scheduled)
        await _call(api, "/payments/confirm", {"tx_id": tx["id"]}, token, 200)
        run.confirm.seconds.append(time.perf_counter() - confirming)

    return payment


async def payouts_under_load(
    stack: Stack, api: httpx.AsyncClient, merchant: str, payment: Payment, rate: float, seconds: float
) -> tuple[Run, Timings]:
    """On-demand payouts of 100 each, one after another, while payments arrive at `rate`; a failed
    payout is counted (in the timings' name) and the run goes on."""
    token = mint_token(stack.settings, merchant, "merchant")
    timings, failed = Timings("on-demand payout"), 0
    load = asyncio.create_task(open_loop("payments + payouts", payment, rate, seconds, seed=7))
    while not load.done():
        started = time.perf_counter()
        try:
            payout = {"merchant_id": merchant, "amount": 100, "idempotency_key": bench_key()}
            await _call(api, "/payouts/schedule", payout, token, 202)
            timings.seconds.append(time.perf_counter() - started)
        except (httpx.HTTPError, RuntimeError) as exc:
            failed += 1
            print(f"  a payout failed: {str(exc)[:120] or type(exc).__name__}", flush=True)
        await asyncio.sleep(0.5)  # pacing: about two payouts a second beside the payments
    timings.name = f"on-demand payout ({len(timings.seconds)} ok, {failed} failed)"
    return await load, timings


async def measured_run(
    stack: Stack, meter: costs.Meter, payment: Payment, rate: float, duration: float, what: str = "payments"
) -> tuple[Run, costs.Counts, str]:
    name = f"{what} @{rate:g}/s"
    run = Run.named(name, rate)
    marks: list[course.Mark] = []
    watcher = None
    if what == "payments":  # the course follows our processes
        watcher = asyncio.create_task(course.follow(stack, run, max(5.0, duration / 20), marks))
    before = await meter.read()
    await open_loop(name, payment, rate, duration, run=run)
    cost = await meter.read() - before
    if watcher is not None:
        watcher.cancel()
    return run, cost, course.memory(marks)


async def alternating_rounds(
    stack: Stack, meter: costs.Meter, ours: Payment, skeleton: Payment, rate: float, seconds: float, rounds: int
) -> str:
    """Ours and the skeleton in turn, `rounds` times, each first in every other round: a single run
    of each meters them minutes apart, and this machine's drift over minutes moved the ratio by a
    fifth between two whole runs; in turns, the drift falls on both alike. Each round's ratio,
    then all rounds together."""
    lines = [f"Alternating rounds of {seconds:g} s at {rate:g}/s, each side first in turn (whole stack, our servers):"]
    metered: dict[str, list[tuple[costs.Counts, int]]] = {"ours": [], "skeleton": []}
    sides = [("ours", ours), ("skeleton", skeleton)]
    for number in range(1, rounds + 1):
        for what, payment in sides if number % 2 else sides[::-1]:  # a steady drift falls on both alike
            run, cost, _ = await measured_run(stack, meter, payment, rate, seconds, f"{what}, round {number}")
            metered[what].append((cost, run.done + run.failures))
        each = costs.ratios(*metered["ours"][-1], *metered["skeleton"][-1])
        lines.append(f"  round {number}: {each['total']:.2f}x, {each['our servers']:.2f}x")

    def together(side: list[tuple[costs.Counts, int]]) -> tuple[costs.Counts, int]:
        return sum((cost for cost, _ in side[1:]), side[0][0]), sum(payments for _, payments in side)

    title = f"CPU per payment over the {rounds} rounds, ours beside the skeleton's (ms):"
    return (
        "\n".join(lines) + "\n" + costs.shares(*together(metered["ours"]), *together(metered["skeleton"]), title=title)
    )


async def with_webhook_endpoint(stack: Stack, api: httpx.AsyncClient, rate: float, duration: float) -> Run:
    """The same open-loop run for another merchant with one endpoint subscribed to every event
    (delivery runs in the worker, off the API's answer), then the plain run again, so that what
    the order alone costs (a fuller database, a warmer stack) is told from what the endpoint costs."""
    operator = mint_token(stack.settings, "op_bench", "operator")
    merchant = await _merchant(api, operator, "Hooked shop")
    with receiving_webhooks() as receiver:
        endpoint = {"url": receiver.url, "enabled_events": ["*"]}
        headers = {"Authorization": f"Bearer {operator}"}
        _created(await api.post(f"/merchants/{merchant}/webhook_endpoints", json=endpoint, headers=headers))
        payment = await http_payments(stack, api, merchant)
        hooked = await open_loop(f"1 webhook endpoint @{rate:g}/s", payment, rate, duration)
        print(row(hooked), flush=True)
        print(f"webhooks received by the end of the run: {receiver.count} of {2 * hooked.done}", flush=True)
    return hooked


async def main(args: argparse.Namespace) -> None:
    print(loadavg(), flush=True)
    print(machine_speed(), flush=True)
    overrides = STACK_SETTINGS | {"PAYMENTS_API_WORKERS": str(args.api_workers)}
    if args.max_inits_in_flight is not None:
        overrides["PAYMENTS_MAX_INITS_IN_FLIGHT"] = str(args.max_inits_in_flight)
    with running_stack(args.api, settings=overrides) as stack:
        api = httpx.AsyncClient(base_url=stack.api, timeout=30, limits=httpx.Limits(max_connections=None))
        engine = create_engine(stack.database_url(), 2)
        redis = Redis.from_url(stack.redis_url())
        meter = costs.Meter(stack, engine, redis, api)
        await meter.start()
        merchant = await _merchant(api, mint_token(stack.settings, "op_bench", "operator"), "Bench shop")
        payment = await http_payments(stack, api, merchant)
        added = await scale.add_workers(stack, await connect(stack.settings), args.workers)
        print(f"{args.api_workers} API process(es), {args.workers} worker process(es)", flush=True)
        await open_loop("warm-up", payment, 5, 5)

        table = [HEADER]
        killing = None
        if args.kill_worker_at is not None:
            killing = asyncio.create_task(scale.kill_later(stack, added[0], args.kill_worker_at))
        run, cost, memory = await measured_run(stack, meter, payment, args.rate, args.duration)
        if killing is not None:
            await killing
        if args.workers > 1:
            print(scale.checks_report(await scale.money_checks(stack, engine)), flush=True)
        table.append(row(run))
        print(row(run), flush=True)
        if run.errors:
            print("failures by kind: " + ", ".join(f"{n} {what}" for what, n in run.errors.most_common()), flush=True)
        # Per payment started: a payment the client gave up on (a timeout) still did its work.
        print(costs.report(cost, max(1, run.done + run.failures)), flush=True)
        print(memory, flush=True)
        print(loadavg(), flush=True)

        with_payouts, payouts = await payouts_under_load(stack, api, merchant, payment, args.rate, args.payout_seconds)
        table.append(row(with_payouts))
        print(payouts.line(), flush=True)
        if args.webhooks:
            table.append(row(await with_webhook_endpoint(stack, api, args.rate, args.duration)))
            again = await open_loop(f"no endpoint again @{args.rate:g}/s", payment, args.rate, args.duration)
            table.append(row(again))
            print(row(again), flush=True)

        steps = Steps(args.step_from, args.step_factor, args.step_seconds, args.step_top, args.step_refinements)
        if args.step_seconds > 0:
            knee, runs = await step("payments API", payment, steps)
            table.extend(row(r) for r in runs)
        comparison = ""
        if args.ceiling:
            with ceiling.running_skeleton(stack) as url:
                skeleton = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=None))
                bare = skeleton_payment(skeleton, merchant)
                await open_loop("skeleton warm-up", bare, 5, 5)
                bare_run, bare_cost, _ = await measured_run(stack, meter, bare, args.rate, args.duration, "skeleton")
                table.append(row(bare_run))
                print(row(bare_run), flush=True)
                bare_payments = bare_run.done + bare_run.failures
                print("The skeleton's " + costs.report(bare_cost, max(1, bare_payments)), flush=True)
                comparison = costs.shares(cost, run.done + run.failures, bare_cost, bare_payments)
                if args.rounds > 0:
                    comparison += "\n" + await alternating_rounds(
                        stack, meter, payment, bare, args.rate, args.round_seconds, args.rounds
                    )
                if args.step_seconds > 0:
                    ceiling_knee, ceiling_runs = await step("skeleton", bare, steps)
                    table.extend(row(r) for r in ceiling_runs)
                await skeleton.aclose()
        print("\n" + "\n".join(table))
        print(payouts.line())
        if comparison:
            print(comparison)
        if args.step_seconds > 0:
            limit = f"p99 of both calls < 500 ms, no failure, steps of {args.step_seconds:g} s"
            print(f"knee ({limit}): ours {knee:g}/s", end="")
            if args.ceiling:
                share = f"{100 * knee / ceiling_knee:.0f} %" if ceiling_knee else "n/a"
                print(f", the skeleton's {ceiling_knee:g}/s: ours is {share} of it", end="")
            print()
        print(loadavg(), flush=True)
        await api.aclose()
        await redis.aclose()
        await engine.dispose()


def skeleton_payment(skeleton: httpx.AsyncClient, merchant: str) -> Payment:
    """The same payment through the skeleton's minimal route (bench/ceiling.py)."""

    async def payment(run: Run, scheduled: float) -> None:
        body = {
            "user_id": f"usr_{uuid.uuid4().hex}",
            "merchant_id": merchant,
            "amount": 1999,
            "currency": "usd",
            "card_token": "pm_card_visa",
            "idempotency_key": bench_key(),
        }
        workflow = _created(await skeleton.post("/init", json=body))
        confirming = time.perf_counter()
        run.init.seconds.append(confirming - scheduled)
        confirmed = await skeleton.post("/confirm", json={"workflow_id": workflow})
        if confirmed.status_code != 200:
            raise RuntimeError(f"/confirm {confirmed.status_code}")
        run.confirm.seconds.append(time.perf_counter() - confirming)

    return payment


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="a running stack's API (default: start a throwaway stack)")
    parser.add_argument("--rate", type=float, default=12.0, help="payments/s of the measured run (the seed's average)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the measured run")
    parser.add_argument(
        "--payout-seconds", type=float, default=60.0, help="seconds of payouts under load (about 2 a second)"
    )
    parser.add_argument("--step-from", type=float, default=4.0, help="the step run's first rate")
    parser.add_argument("--step-factor", type=float, default=1.3, help="each step's rate over the last")
    parser.add_argument("--step-seconds", type=float, default=30.0, help="seconds per step (0: no step run)")
    parser.add_argument("--step-top", type=float, default=400.0, help="the step run's highest rate")
    parser.add_argument(
        "--step-refinements", type=int, default=2, help="steps between the last rate held and the first missed"
    )
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="no skeleton (bench/ceiling.py)")
    parser.add_argument("--rounds", type=int, default=3, help="then rounds of ours and the skeleton in turn (0: none)")
    parser.add_argument("--round-seconds", type=float, default=20.0, help="seconds of each side in each round")
    parser.add_argument("--api-workers", type=int, default=1, help="API processes (payments api --workers N)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (more than one: money checks)")
    parser.add_argument(
        "--max-inits-in-flight",
        type=int,
        help="the bound on inits waiting on Temporal (payments/api/admission.py)",
    )
    parser.add_argument(
        "--webhooks", action="store_true", help="then the run for a merchant with a webhook endpoint (all events)"
    )
    parser.add_argument("--kill-worker-at", type=float, help="SIGKILL an added worker this many s into the run")
    args = parser.parse_args()
    if args.kill_worker_at is not None and args.workers < 2:
        parser.error("--kill-worker-at needs --workers 2 or more (one to kill, one to go on)")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
