"""Events: one for every change, listable and retrievable as at Stripe."""

from __future__ import annotations

from typing import Any

from stripe_emulator.emulator import Emulator
from stripe_emulator.listing import list_objects, retriever
from stripe_emulator.store import Obj

retrieve = retriever("event")


async def list_all(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
    wanted: set[str | None] | None = set(params["types"]) if params.get("types") else None
    if (kind := params.get("type")) is not None:
        wanted = {kind} & wanted if wanted is not None else {kind}
    return list_objects(emu.store, "event", "/v1/events", params, types=wanted)
