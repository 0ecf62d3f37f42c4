"""`expand[]`: replace an id field with the object it names (`latest_charge`,
`data.latest_charge`, `latest_charge.balance_transaction`).

Copy on write: each dict or list on an expanded path is copied (shallow) before it changes, so the
stored objects never change and nothing off the path is copied (a deep copy of each expanded
charge cost more than the rest of a list page). An object at the end of a path that the store keeps
as JSON (bulk-loaded history) goes into the answer as that JSON, never parsed."""

from __future__ import annotations

from typing import Any

from stripe_emulator.store import Obj, Store


def _expand_path(store: Store, node: Any, parts: list[str]) -> Any:
    """`node` with the path expanded, as a new dict: the stored one never changes."""
    if not parts or not isinstance(node, dict):
        return node
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(node.get("data"), list):
        return node | {"data": [_expand_path(store, item, rest) for item in node["data"]]}
    value = node.get(head)
    if isinstance(value, str) and (target := store.peek(value) if rest else store.embedded(value)) is not None:
        value = target
    return node | {head: _expand_path(store, value, rest)}


def expand(store: Store, obj: Obj, paths: list[str]) -> Obj:
    result = obj
    for path in paths:
        result = _expand_path(store, result, path.split("."))
    return result
