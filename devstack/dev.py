"""`make dev`: the whole stack on this machine from PyPI wheels, kept running (a crashed process is
restarted); Ctrl-C stops all of it."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from devstack.barman import BarmanAgent
from devstack.local import local_settings, write_env_file
from devstack.patroni import NODES, PATRONI_PORTS, patroni_cluster
from devstack.ports import answers_200, ensure_free, wait_ready, wait_until
from devstack.postgres import PostgresServer
from devstack.redis import RedisServer
from devstack.supervisor import ChildDied, Supervisor, run_dir
from devstack.temporal import TemporalDevServer
from payments.api.auth import mint_token
from payments.api.routes.stripe_webhooks import SUBSCRIBED_EVENTS
from payments.config.ports import PortTakenError
from payments.config.settings import Settings
from payments.schema.migrate import upgrade

READY_TIMEOUT = 90.0


def _planned_ports(settings: Settings) -> list[tuple[int, str, str]]:
    ports = [(settings.api_port, "the API", "PAYMENTS_API_PORT")]
    if not settings.database_url:
        ports.append((settings.postgres_port, "PostgreSQL", "PAYMENTS_POSTGRES_PORT"))
    if not settings.database_url and settings.postgres_standby:
        ports.append((settings.postgres_standby_port, "the PostgreSQL standby", "PAYMENTS_POSTGRES_STANDBY_PORT"))
        ports += [(settings.patroni_port + i, "Patroni", "PAYMENTS_PATRONI_PORT") for i in range(PATRONI_PORTS)]
    if not settings.redis_url:
        ports.append((settings.redis_port, "Redis", "PAYMENTS_REDIS_PORT"))
    if not settings.temporal_address:
        ports.append((settings.temporal_port, "Temporal", "PAYMENTS_TEMPORAL_PORT"))
        ports.append((settings.temporal_ui_port, "the Temporal UI", "PAYMENTS_TEMPORAL_UI_PORT"))
    if settings.stripe_uses_emulator:
        ports.append((settings.stripe_emulator_port, "the Stripe emulator", "PAYMENTS_STRIPE_EMULATOR_PORT"))
    if settings.worker_metrics_port:
        ports.append((settings.worker_metrics_port, "the worker's /metrics", "PAYMENTS_WORKER_METRICS_PORT"))
    return ports


def _start_services(settings: Settings, stack: Path, sup: Supervisor) -> None:
    """Start what is not given by a URL, then wait until each one serves (a query, a PING, a
    namespace, an HTTP answer): an open port is not yet a ready server."""
    ready: list[tuple[Callable[[], bool], str]] = []
    if not settings.database_url:
        _start_postgres(settings, stack, sup)
    if not settings.redis_url:
        redis = RedisServer(stack / "redis", settings.redis_port)
        sup.spawn("redis", redis.command())
        ready.append((redis.answers_ping, "Redis"))
    if not settings.temporal_address:
        temporal = TemporalDevServer(
            stack / "temporal.db", settings.temporal_port, settings.temporal_ui_port, settings.codec_endpoint
        )
        sup.spawn("temporal", temporal.command())
        ready.append((partial(temporal.serves, settings.temporal_namespace), "Temporal"))
    if settings.stripe_uses_emulator:
        port = str(settings.stripe_emulator_port)
        state = str(stack / "stripe-emulator.sqlite3")
        webhook = f"{settings.api_url}/webhooks/stripe"
        secret = settings.stripe_webhook_secret.get_secret_value()
        emulator = [sys.executable, "-m", "stripe_emulator", "--port", port, "--state-file", state]
        subscription = [
            "--webhook-url",
            webhook,
            "--webhook-secret",
            secret,
            "--webhook-events",
            ",".join(SUBSCRIBED_EVENTS),
        ]
        sup.spawn("stripe-emulator", [*emulator, *subscription])
        ready.append((partial(answers_200, f"http://127.0.0.1:{port}/_emulator/faults"), "the Stripe emulator"))
    for serving, what in ready:
        _wait_serving(sup, serving, what)


def _start_postgres(settings: Settings, stack: Path, sup: Supervisor) -> None:
    """One server, with Barman's WAL receiver as its synchronous standby if dev_backups is on; or
    with postgres_standby, a primary and a synchronous standby under Patroni."""
    if settings.postgres_standby:
        cluster = patroni_cluster(settings)
        cluster.initialize()
        argv, env = cluster.witness_command()
        sup.spawn("raft-witness", argv, env=env, user=cluster.run_as)
        for node in range(NODES):
            argv, env = cluster.node_command(node)
            sup.spawn(f"patroni{node}", argv, env=env, user=cluster.run_as, stop_signal=signal.SIGINT)
        _wait_serving(sup, cluster.ready, "PostgreSQL under Patroni (a primary and its synchronous standby)")
        postgres = cluster.node_server(cluster.primary() or 0)
    else:
        postgres = PostgresServer(stack / "postgres", settings.postgres_port)
        postgres.initialize()
        agent = BarmanAgent(settings, postgres) if settings.dev_backups else None
        extra = agent.postgres_settings() if agent else []
        sup.spawn("postgres", postgres.command(*extra), user=postgres.run_as, stop_signal=signal.SIGINT)
        _wait_serving(sup, postgres.accepts_queries, "PostgreSQL")
        if agent:  # before the first commit, which waits for it
            agent.write_config()
            sup.spawn("barman", agent.receiver_command())
    postgres.create_database()


def _served_urls(settings: Settings) -> list[str]:
    """What our own processes serve once they are up: the worker's metrics and the API's readiness."""
    return [url for url in (settings.worker_metrics_url, f"{settings.api_url}/readyz") if url]


def _wait_serving(sup: Supervisor, serving: Callable[[], bool], what: str) -> None:
    wait_until(
        serving, f"{what} did not get ready; see {sup.log_dir}", READY_TIMEOUT, lambda: _fail_if_a_child_died(sup)
    )


def _fail_if_a_child_died(sup: Supervisor) -> None:
    """While the stack starts, a child that exits is a broken setup, not a crash to restart."""
    if child := sup.first_exited():
        raise child.died()


def _banner(local: Settings, stack: Path, env_file: Path, operator: str) -> str:
    api = local.api_url
    temporal = f"Temporal UI      {local.ui_origin}"
    if local.temporal_address:
        temporal = f"Temporal         {local.temporal_address}"
    lines = [
        "",
        "Payments dev stack is up.",
        f"  API docs         {api}/docs",
        f"  {temporal}",
        f"  PostgreSQL       {local.database_url}",
        f"  Redis            {local.redis_url}",
    ]
    if local.stripe_uses_emulator:
        base = local.stripe_api_base
        lines += [
            f"  Stripe emulator  {base}",
            f"                   SDK: stripe.StripeClient('sk_test_…', base_addresses={{'api': '{base}'}})",
            f"                   CLI: stripe --api-key sk_test_emulator --api-base {base} payment_intents list",
        ]
    lines += [
        f"  Logs and data    {stack}",
        "",
        "An operator token (mint others with `.venv/bin/payments token --sub ID --role user|merchant|operator`):",
        f"  export TOKEN={operator}",
        "",
        f"In another shell, the ports, URLs and that token: source {env_file}",
        f"then a merchant, users and payments in every state (ids and tokens in {stack}/demo.env):",
        f"  .venv/bin/payments demo && source {stack}/demo.env",
        "Try:",
        f"  curl -s {api}/readyz",
        f'  curl -s -X POST {api}/users -H "Authorization: Bearer $TOKEN" '
        "-H 'Content-Type: application/json' -d '{\"name\": \"Ada\"}'",
        "",
        "A crashed worker, API or other service is restarted; restart one yourself with",
        "  .venv/bin/python -m devstack restart worker|api|stripe-emulator|temporal|redis|postgres",
        "Ctrl-C stops everything; data in .devstack/ is kept for the next `make dev`.",
    ]
    return "\n".join(lines)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_dev_stack(settings: Settings) -> int:
    try:
        ensure_free(_planned_ports(settings))
    except PortTakenError as exc:  # before the supervisor, which would take over a running stack's run dir
        print(f"\n{exc}", file=sys.stderr)
        return 1
    stack = Path(settings.devstack_dir).resolve()
    sup = Supervisor(stack / "logs", run_dir(settings.devstack_dir))
    local = local_settings(settings)
    urls = {
        "PAYMENTS_DATABASE_URL": local.database_url,
        "PAYMENTS_REDIS_URL": local.redis_url,
        "PAYMENTS_STRIPE_API_BASE": local.stripe_api_base,
    }
    env = dict(os.environ) | {name: url for name, url in urls.items() if url}
    env.setdefault("PAYMENTS_CODEC_REQUIRE_AUTH", "false")
    if local.stripe_uses_emulator:  # no rate limit to keep under: reconciliation reads at full speed
        env.setdefault("PAYMENTS_RECONCILIATION_STRIPE_READS_PER_SECOND", "1000")
    # Explicit, because a shell that starts us in the background hands us SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    try:
        print(f"Starting the local stack (logs in {stack}/logs) ...", flush=True)
        _start_services(settings, stack, sup)
        upgrade(env["PAYMENTS_DATABASE_URL"])
        sup.spawn("worker", [sys.executable, "-m", "payments", "worker"], env=env, stop_signal=signal.SIGINT)
        sup.spawn("api", [sys.executable, "-m", "payments", "api"], env=env, stop_signal=signal.SIGINT)
        for url in _served_urls(settings):  # the banner's URLs answer before it is printed
            wait_ready(url, lambda: _fail_if_a_child_died(sup), READY_TIMEOUT, f"; see {sup.log_dir}")
        operator = mint_token(settings, "op_demo", "operator")
        print(_banner(local, stack, write_env_file(settings, operator), operator), flush=True)
        sup.supervising()
        while True:
            sup.supervise()
            time.sleep(0.5)  # the supervisor's round; restarts have their own backoff
    except (ChildDied, TimeoutError) as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short: no orphans
        sup.stop_all()
        print("Stopped every process of the stack.", flush=True)
