"""Stripe's wire format: form-encoded nested keys in, Stripe's error object out."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.responses import JSONResponse

_KEY_PART = re.compile(r"\[([^\]]*)\]")


class StripeJSON(JSONResponse):
    """An answer's object as JSON, encoded by orjson: a page of 100 objects through the standard
    library's encoder was most of the emulator's time in a large reconciliation."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def parse_form(body: str) -> dict[str, Any]:
    """`metadata[k]=v&expand[]=a&expand[1]=b&created[gte]=1` -> {"metadata": {"k": "v"},
    "expand": ["a", "b"], "created": {"gte": "1"}}."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        parts = [head, *_KEY_PART.findall("[" + rest)] if rest else [head]
        node: Any = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            if isinstance(node, list):
                if last:
                    node.append(value)
                    break
                node.append({} if following else [])
                node = node[-1]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if following == "" else {})
    return _indexed_to_lists(result)


def _indexed_to_lists(node: Any) -> Any:
    """The SDKs send arrays as `expand[0]=a&expand[1]=b`: a dict with numeric keys is a list."""
    if isinstance(node, list):
        return [_indexed_to_lists(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_indexed_to_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _indexed_to_lists(v) for k, v in node.items()}


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type_, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        if decline_code:
            self.body["decline_code"] = decline_code
        self.body.update(extra)

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.body}, status_code=self.status)


def invalid(message: str, code: str | None = None, param: str | None = None, **extra: Any) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code, param, **extra)


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", param)


def unexpected_state(action: str, obj: dict[str, Any]) -> StripeError:
    return invalid(
        f"You cannot {action} this PaymentIntent because it has a status of {obj['status']}.",
        "payment_intent_unexpected_state",
        payment_intent=obj,
    )


def required(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise invalid(f"Missing required param: {name}.", "parameter_missing", name)
    return params[name]


def positive_int(params: dict[str, Any], name: str, default: int | None = None) -> int:
    raw = params.get(name, default)
    if raw is None:
        raw = required(params, name)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {raw}", "parameter_invalid_integer", name) from None
    if value <= 0:
        raise invalid(
            "This value must be greater than or equal to 1.",
            "parameter_invalid_integer",
            name,
        )
    return value


def currency(params: dict[str, Any]) -> str:
    value = str(required(params, "currency")).lower()
    if len(value) != 3 or not value.isalpha():
        raise invalid(f"Invalid currency: {value}.", "parameter_invalid_string", "currency")
    return value
