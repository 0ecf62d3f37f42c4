"""Retrieve and list handlers shared by every resource. Lists are Stripe's: newest first,
`limit`, `starting_after` / `ending_before` cursors, `created[gt|gte|lt|lte]`, `has_more`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Iterable
from typing import TYPE_CHECKING, Any

from stripe_emulator.store import Obj, Store
from stripe_emulator.wire import invalid, missing

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator

Handler = Callable[["Emulator", dict[str, Any], dict[str, str]], Awaitable[Obj]]
MAX_LIMIT = 100


def _limit(params: dict[str, Any]) -> int:
    try:
        limit = int(params.get("limit", 10))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("Invalid limit: must be between 1 and 100.", param="limit")
    return limit


def _created_filter(params: dict[str, Any]) -> Callable[[int], bool]:
    created = params.get("created")
    if created is None:
        return lambda _: True
    if isinstance(created, str):
        exact = int(created)
        return lambda c: c == exact
    bounds = {op: int(value) for op, value in created.items()}
    checks = {
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
    }
    return lambda c: all(checks[op](c, v) for op, v in bounds.items() if op in checks)


def _take(
    store: Store,
    kind: str,
    positions: Iterable[int],
    limit: int,
    created: Callable[[int], bool],
    types: Container[str | None] | None,
    keep: Callable[[Obj], bool] | None,
    embed: bool,
) -> tuple[list[Any], bool]:
    """Walk `positions` collecting up to `limit` kept objects; has_more if one more exists. An
    object out of the `created` bounds or `types` is passed over without being read; with no
    `keep` to ask, an object goes in as the store keeps it when `embed` (nothing expands it)."""
    ids = store.ids_of(kind)
    page: list[Any] = []
    for index in positions:
        if not created(store.created(kind, index)) or (types is not None and store.type_at(kind, index) not in types):
            continue
        obj: Any = store.embedded(ids[index]) if embed and keep is None else store.peek(ids[index])
        if obj is None or (keep is not None and not keep(obj)):
            continue
        if len(page) == limit:
            return page, True
        page.append(obj)
    return page, False


def list_objects(
    store: Store,
    kind: str,
    url: str,
    params: dict[str, Any],
    where: Callable[[Obj], bool] | None = None,
    types: Container[str | None] | None = None,
) -> Obj:
    """A page of `kind`; `types`: the `type` values wanted (None: any), told without reading an object."""
    limit, created = _limit(params), _created_filter(params)
    embed = not params.get("expand")
    ids = store.ids_of(kind)
    # Newest first is the creation order walked backwards; `ending_before` walks forwards from it.
    if "ending_before" in params:
        start = _cursor(store, params["ending_before"], "ending_before") + 1
        page, has_more = _take(store, kind, range(start, len(ids)), limit, created, types, where, embed)
        page.reverse()
    else:
        start = (
            _cursor(store, params["starting_after"], "starting_after") - 1
            if "starting_after" in params
            else len(ids) - 1
        )
        page, has_more = _take(store, kind, range(start, -1, -1), limit, created, types, where, embed)
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _cursor(store: Store, object_id: str, param: str) -> int:
    position = store.position(object_id)
    if position is None:
        raise missing("object", object_id, param)
    return position


def retriever(kind: str, param: str = "id") -> Handler:
    async def retrieve(emu: Emulator, _: dict[str, Any], path: dict[str, str]) -> Obj:
        return emu.find(kind, path["id"], param)

    return retrieve


def lister(kind: str, url: str, *equal_fields: str) -> Handler:
    """A list handler; each of `equal_fields` is a query parameter the object's field must equal."""

    async def list_all(emu: Emulator, params: dict[str, Any], _: dict[str, str]) -> Obj:
        wanted = {f: params[f] for f in equal_fields if f in params}
        types = {wanted.pop("type")} if "type" in wanted else None  # told without reading the object
        where = (lambda o: all(o.get(f) == v for f, v in wanted.items())) if wanted else None
        return list_objects(emu.store, kind, url, params, where, types)

    return list_all
