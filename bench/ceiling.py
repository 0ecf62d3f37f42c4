"""The ceiling: the skeleton of this design, everything a payment asks of Temporal and nothing else.

PaymentWorkflow itself (its search attributes and their upserts, the expiry timer, the patch
markers, the local activities, the confirm update with its capture activity task) runs on its own
task queue with activities that do nothing but answer with payloads of the real shape and size,
through the real codec (payments/config/temporal.py). The calls come through a minimal HTTP route (no
auth, no database, no Redis) under the API's uvicorn settings, in its own process, and the
skeleton's worker is its own process too, so that `make bench` meters the CPU of each. Our cost
as a share of this says what our own work adds to what the design cannot do without.

    python -m bench.ceiling worker            # each with the stack's PAYMENTS_* environment
    python -m bench.ceiling api --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.throwaway import Stack
from payments.config.settings import Settings
from payments.schema.messages import (
    Authorization,
    AuthorizeRequest,
    CaptureRequest,
    ConfirmRequest,
    InitRequest,
    PaymentRequest,
    PaymentView,
    StatusChange,
    StripeCapture,
)
from payments.workflows.payment import PaymentWorkflow, workflow_id

TASK_QUEUE = "bench-skeleton"
ROLE_PREFIX = "skeleton "


def _view(tx_id: str, status: str, amount_captured: int = 0) -> PaymentView:
    """A view of the real size: ids of the real length, a card brand and last four."""
    return PaymentView(
        tx_id=tx_id,
        user_id=f"usr_{'0' * 32}",
        merchant_id=f"mer_{'0' * 32}",
        amount=1999,
        amount_captured=amount_captured,
        amount_refunded=0,
        currency="usd",
        status=status,
        idempotency_key="0" * 32,
        card_brand="visa",
        card_last4="4242",
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )


# The activities PaymentWorkflow calls, by the same names, doing nothing.
@activity.defn(name="record_payment")
async def record_payment(request: PaymentRequest) -> PaymentView:
    return dataclasses.replace(
        _view(request.tx_id, "pending"),
        user_id=request.user_id,
        merchant_id=request.merchant_id,
        idempotency_key=request.idempotency_key,
        card_brand=None,
        card_last4=None,
    )


@activity.defn(name="authorize_payment")
async def authorize_payment(request: AuthorizeRequest) -> Authorization:
    return Authorization(f"pi_{'0' * 24}", "authorized", "visa", "4242")


@activity.defn(name="record_status")
async def record_status(change: StatusChange) -> PaymentView:
    return _view(change.tx_id, change.status)


@activity.defn(name="capture_payment_with_fee")
async def capture_payment_with_fee(capture: CaptureRequest) -> StripeCapture:
    return StripeCapture(capture.amount, 88)


@activity.defn(name="record_capture")
async def record_capture(capture: CaptureRequest) -> PaymentView:
    return _view(capture.tx_id, "confirmed", capture.amount)


ACTIVITIES: list[Callable[..., Any]] = [
    record_payment,
    authorize_payment,
    record_status,
    capture_payment_with_fee,
    record_capture,
]


async def _run_worker(settings: Settings) -> None:
    from payments.config.heap import tune_collector
    from payments.config.temporal import connect
    from payments.workers.registry import workflow_runner
    from payments.workers.worker import STICKY_WAIT

    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tune_collector()
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[PaymentWorkflow],
        activities=ACTIVITIES,
        workflow_runner=workflow_runner(),
        sticky_queue_schedule_to_start_timeout=STICKY_WAIT,
    ):
        await stop.wait()


def _json(body: dict[str, Any], status: int) -> Response:
    """The view as JSON, its timestamps as ISO strings (as the API's resource has them)."""
    return Response(json.dumps(body, default=datetime.isoformat), status, media_type="application/json")


def skeleton_app(settings: Settings) -> Starlette:
    """POST /init and /confirm: the same Temporal calls as the API's payment routes."""
    from payments.api.idempotency import fingerprint
    from payments.api.routes.payments import payment_start
    from payments.config.heap import tune_collector
    from payments.config.temporal import connect

    clients: list[Client] = []

    async def temporal() -> Client:
        if not clients:
            clients.append(await connect(settings))
        return clients[0]

    async def init(request: Request) -> Response:
        body = await request.json()
        payment = PaymentRequest(
            tx_id=f"tx_{uuid.uuid4().hex}",
            user_id=body["user_id"],
            merchant_id=body["merchant_id"],
            amount=body["amount"],
            currency=body["currency"],
            card_token=body["card_token"],
            idempotency_key=body["idempotency_key"],
            fingerprint=fingerprint(*(body[k] for k in ("user_id", "merchant_id", "amount", "currency", "card_token"))),
            authorization_expiry_seconds=int(settings.authorization_expiry.total_seconds()),
            return_url=str(request.url_for("ready")),
        )
        start = payment_start(payment, TASK_QUEUE)
        view = await (await temporal()).execute_update_with_start_workflow(
            PaymentWorkflow.init, InitRequest(payment.fingerprint), start_workflow_operation=start
        )
        answer = dataclasses.asdict(view) | {"id": workflow_id(payment.user_id, payment.idempotency_key)}
        return _json(answer, 201)

    async def confirm(request: Request) -> Response:
        body = await request.json()
        handle = (await temporal()).get_workflow_handle(body["workflow_id"])
        view = await handle.execute_update(PaymentWorkflow.confirm, ConfirmRequest(None))
        return _json(dataclasses.asdict(view), 200)

    async def ready(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tune_collector()  # the API's own collector, as its lifespan sets it
        yield

    routes = [
        Route("/init", init, methods=["POST"]),
        Route("/confirm", confirm, methods=["POST"]),
        Route("/readyz", ready, name="ready"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


@contextmanager
def running_skeleton(stack: Stack) -> Iterator[str]:
    """The skeleton's worker and API beside a stack we started, with its environment (the same
    Temporal, namespace and keys); yields the API's base URL. Their processes are the stack's
    `replacements`, so that bench/costs.py meters them (as `skeleton api`, `skeleton worker`)."""
    from devstack.ports import free_port, wait_ready

    model = stack.process("worker")
    if model is None:
        raise RuntimeError("the skeleton runs beside a stack we started")
    env, port = model.environ(), free_port()
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.ceiling", *role],
            env=env,
            cwd=model.cwd(),
            stdout=subprocess.DEVNULL,
            stderr=None,
            start_new_session=True,
        )
        for role in (["worker"], ["api", "--port", str(port)])
    ]
    stack.replacements.extend(started)
    url = f"http://127.0.0.1:{port}"
    try:

        def still_running() -> None:
            for process in started:
                if process.poll() is not None:
                    raise RuntimeError(f"a skeleton process (pid {process.pid}) exited with {process.returncode}")

        wait_ready(f"{url}/readyz", still_running, 60.0)
        yield url
    finally:
        for process in started:
            process.send_signal(signal.SIGINT)
        for process in started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def role_of(argv: list[str]) -> str | None:
    """`skeleton api` or `skeleton worker` for a skeleton process's command line."""
    if "bench.ceiling" not in argv:
        return None
    return ROLE_PREFIX + argv[argv.index("bench.ceiling") + 1]


def is_skeleton(role: str) -> bool:
    return role.startswith(ROLE_PREFIX)


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["worker", "api"])
    parser.add_argument("--port", type=int, default=8123)
    args = parser.parse_args()
    settings = Settings()
    if args.role == "worker":
        import uvloop

        uvloop.run(_run_worker(settings))
    else:
        import uvicorn

        from payments.api.app import UVICORN_OPTIONS

        uvicorn.run(skeleton_app(settings), host="127.0.0.1", port=args.port, **UVICORN_OPTIONS)


if __name__ == "__main__":
    _cli()
