"""Where the local stack's services are, in one place: the URLs `make dev` hands its children and
writes to `.devstack/env` for other shells, and the ones `payments inspect` falls back to there."""

from __future__ import annotations

import shlex
from pathlib import Path

from config.settings import Settings
from workers.devstack.postgres import PostgresServer
from workers.devstack.redis import RedisServer

ENV_FILE = "env"


def local_settings(settings: Settings) -> Settings:
    """`settings` with each service that no URL names at the address `make dev` starts it on
    (Temporal's address already falls back so: `temporal_target`)."""
    local: dict[str, str] = {}
    if not settings.database_url:
        local["database_url"] = PostgresServer(Path(settings.devstack_dir), settings.postgres_port).url
    if not settings.redis_url:
        local["redis_url"] = RedisServer(Path(settings.devstack_dir), settings.redis_port).url
    if settings.stripe_uses_emulator and not settings.stripe_api_base:
        local["stripe_api_base"] = f"http://127.0.0.1:{settings.stripe_emulator_port}"
    return settings.model_copy(update=local)


def env_file_text(settings: Settings, operator_token: str) -> str:
    """`export` lines for another shell (`source .devstack/env`): the settings that put a
    `payments` command (or a second `make dev`) on this stack, and the stack's URLs and an operator
    token under short names for curl, redis-cli and the Temporal CLI (which reads TEMPORAL_ADDRESS)."""
    local = local_settings(settings)
    names = {
        "PAYMENTS_ENV": "development",
        "PAYMENTS_DEVSTACK_DIR": str(Path(settings.devstack_dir).resolve()),
        "PAYMENTS_API_PORT": settings.api_port,
        "PAYMENTS_POSTGRES_PORT": settings.postgres_port,
        "PAYMENTS_REDIS_PORT": settings.redis_port,
        "PAYMENTS_TEMPORAL_PORT": settings.temporal_port,
        "PAYMENTS_TEMPORAL_UI_PORT": settings.temporal_ui_port,
        "PAYMENTS_STRIPE_EMULATOR_PORT": settings.stripe_emulator_port,
        "PAYMENTS_WORKER_METRICS_PORT": settings.worker_metrics_port,
    }
    # What the stack was given rather than started (a URL of one's own) goes along as it was given.
    given = {
        "PAYMENTS_DATABASE_URL": settings.database_url,
        "PAYMENTS_REDIS_URL": settings.redis_url,
        "PAYMENTS_TEMPORAL_ADDRESS": settings.temporal_address,
        "PAYMENTS_STRIPE_API_BASE": settings.stripe_api_base,
    }
    names |= {name: value for name, value in given.items() if value}
    names |= {
        "API": settings.api_url,
        "CODEC_ENDPOINT": settings.codec_endpoint,
        "TEMPORAL_ADDRESS": settings.temporal_target,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "DATABASE_URL": local.database_url,
        "REDIS_URL": local.redis_url,
    }
    if not settings.temporal_address:
        names["TEMPORAL_UI"] = settings.ui_origin
    if local.stripe_uses_emulator:
        names["STRIPE_API_BASE"] = local.stripe_api_base
    if settings.worker_metrics_port:
        names["WORKER_METRICS"] = f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics"
    names["TOKEN"] = operator_token
    lines = [f"export {name}={shlex.quote(str(value))}" for name, value in names.items()]
    header = "# The stack `make dev` runs; in another shell: source .devstack/env (rewritten at each start)"
    return "\n".join([header, *lines, ""])


def write_env_file(settings: Settings, operator_token: str) -> Path:
    path = Path(settings.devstack_dir) / ENV_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # it holds a token
    path.write_text(env_file_text(settings, operator_token))
    return path
