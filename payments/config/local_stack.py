"""Where `make dev` serves each service (devstack/ starts them there): the addresses a `payments`
command falls back to when no URL names a service, as Temporal's address already does
(`Settings.temporal_target`)."""

from __future__ import annotations

from payments.config.settings import Settings

LOCAL_DATABASE = "payments"


def local_database_url(port: int, database: str = LOCAL_DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def local_primary_url(ports: tuple[int, ...], database: str = LOCAL_DATABASE) -> str:
    """Whichever of the servers on `ports` is primary: asyncpg tries the hosts in turn and keeps
    the first that takes writes (`target_session_attrs=read-write`), so a client follows a
    failover by reconnecting."""
    hosts = "&".join(f"host=127.0.0.1:{port}" for port in ports)
    return f"postgresql://postgres@/{database}?{hosts}&target_session_attrs=read-write"


def local_redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def local_settings(settings: Settings) -> Settings:
    """`settings` with each service that no URL names at the address `make dev` starts it on."""
    local: dict[str, str] = {}
    if not settings.database_url and settings.postgres_standby:
        local["database_url"] = local_primary_url((settings.postgres_port, settings.postgres_standby_port))
    elif not settings.database_url:
        local["database_url"] = local_database_url(settings.postgres_port)
    if not settings.redis_url:
        local["redis_url"] = local_redis_url(settings.redis_port)
    if settings.stripe_uses_emulator and not settings.stripe_api_base:
        local["stripe_api_base"] = f"http://127.0.0.1:{settings.stripe_emulator_port}"
    return settings.model_copy(update=local)
