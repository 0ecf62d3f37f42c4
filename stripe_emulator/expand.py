"""`expand[]`: replace an id field with the object it names (`latest_charge`,
`data.latest_charge`, `latest_charge.balance_transaction`)."""

from __future__ import annotations

import copy
from typing import Any

from stripe_emulator.store import Obj, Store


def _expand_path(store: Store, node: Any, parts: list[str]) -> Any:
    if not parts or not isinstance(node, dict):
        return node
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(node.get("data"), list):
        node["data"] = [_expand_path(store, item, rest) for item in node["data"]]
        return node
    value = node.get(head)
    if isinstance(value, str) and (target := store.get(value)) is not None:
        value = copy.deepcopy(target)
    node[head] = _expand_path(store, value, rest)
    return node


def expand(store: Store, obj: Obj, paths: list[str]) -> Obj:
    if not paths:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        result = _expand_path(store, result, path.split("."))
    return result
