"""Liveness and readiness: readiness names each dependency that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ServicesDep
from api.errors import envelope

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


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


@router.get("/readyz", responses={503: {"description": "A dependency is down"}})
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    names = ("postgres", "redis", "temporal")
    results = await asyncio.gather(_ok(_postgres(services)), _ok(services.redis.ping()), _ok(_temporal(services)))
    checks = dict(zip(names, results, strict=True))
    down = [name for name, ok in checks.items() if not ok]
    if down:
        return envelope(request, 503, "not_ready", f"Not ready: {', '.join(down)} unreachable.", {"Retry-After": "5"})
    return JSONResponse({"status": "ready", "checks": {n: "ok" for n in names}})
