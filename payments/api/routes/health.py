"""Liveness and readiness: readiness names each dependency that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from payments.api.contract import public_errors
from payments.api.deps import ServicesDep
from payments.api.errors import ServiceUnavailable

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0
DEPENDENCIES = ("postgres", "redis", "temporal")


class NotReady(ServiceUnavailable):
    code = "not_ready"


class Healthy(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, Literal["ok"]]


@router.get("/healthz", summary="Liveness (anyone)", responses=public_errors())
async def healthz() -> Healthy:
    return Healthy()


async def _ok(check: Awaitable[object]) -> bool:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
        return True
    except Exception:  # any failure of a dependency check means "not ready"
        return False


async def _postgres(services: ServicesDep) -> None:
    async with services.probe_engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _temporal(services: ServicesDep) -> None:
    client = await services.temporal()
    await client.service_client.check_health()


@router.get("/readyz", summary="Readiness: PostgreSQL, Redis and Temporal (anyone)", responses=public_errors(NotReady))
async def readyz(services: ServicesDep) -> Ready:
    """A 503 `not_ready` names each dependency that is down."""
    results = await asyncio.gather(_ok(_postgres(services)), _ok(services.redis.ping()), _ok(_temporal(services)))
    down = [name for name, ok in zip(DEPENDENCIES, results, strict=True) if not ok]
    if down:
        raise NotReady(f"Not ready: {', '.join(down)} unreachable.")
    return Ready(checks=dict.fromkeys(DEPENDENCIES, "ok"))
