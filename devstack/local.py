"""The `.devstack/env` file `make dev` writes for other shells: where the local stack's services
are (payments/config/local_stack.py) and a token."""

from __future__ import annotations

import shlex
from pathlib import Path

from payments.config.local_stack import local_settings
from payments.config.settings import Settings

ENV_FILE = "env"


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
        "PAYMENTS_POSTGRES_STANDBY": str(settings.postgres_standby).lower(),
        "PAYMENTS_POSTGRES_STANDBY_PORT": settings.postgres_standby_port,
        "PAYMENTS_PATRONI_PORT": settings.patroni_port,
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
    if settings.worker_metrics_url:
        names["WORKER_METRICS"] = settings.worker_metrics_url
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
