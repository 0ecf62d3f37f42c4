"""Events: one for every change, listable and retrievable as at Stripe."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import list_objects, retriever
from stripe_emulator.store import Obj

retrieve = retriever("event")


async def list_all(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    kind = params.get("type")
    types = set(params.get("types", []))
    return list_objects(
        emu.store,
        "event",
        "/v1/events",
        params,
        lambda e: (kind is None or e["type"] == kind) and (not types or e["type"] in types),
    )
