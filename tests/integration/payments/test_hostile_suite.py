"""Hostile input over the whole published contract, for each role, against the real stack:
requests generated from the OpenAPI document (valid and invalid, on random ids and on the caller's
own captured payment), then explicit card-number vectors in every string field of every example
body. None may be a server error, break the
document, or have a card number accepted or echoed.

Bounded (a few examples per operation and mode) and seeded (derandomized) so CI stays fast and
repeatable; the counts are written to the terminal so they can be quoted."""

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.card_numbers import contains_card_number
from tests.integration.payments.conftest import Parties

ROLES = ("operator", "merchant", "user")
EXAMPLES_PER_PASS = 15  # per operation: valid data, valid data on the caller's own resources, invalid data
GENERATION = settings(
    max_examples=EXAMPLES_PER_PASS,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
    suppress_health_check=list(HealthCheck),
)
FULL_WIDTH = {ord(digit): ord(digit) + 0xFEE0 for digit in "0123456789"}
# How a card number may be typed: plain, spaced, dashed, dotted, full-width digits, glued to text.
CARD_NUMBERS = [
    "4242424242424242",
    "4242 4242 4242 4242",
    "5555-5555-5555-4444",
    "3782.822463.10005",
    "4000056655665556".translate(FULL_WIDTH),
    "ref4012888888881881x",
]


def _sent_texts(request: Any) -> list[str]:
    """What the API saw: the URL, every header, the body and (for JSON) its decoded text."""
    texts = [unquote_plus(str(request.url)), *map(str, request.headers.values())]
    body = request.body.decode("utf-8", "replace") if isinstance(request.body, bytes) else request.body or ""
    try:
        texts += [body, json.dumps(json.loads(body), ensure_ascii=False)]
    except ValueError:
        texts.append(body)
    return texts


@schemathesis.check
def no_card_number_accepted_or_echoed(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    if response.status_code < 300 and any(contains_card_number(text) for text in _sent_texts(response.request)):
        raise AssertionError("A request holding a card number was accepted")
    if contains_card_number(response.text or ""):
        raise AssertionError("The response echoes a card number")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    no_card_number_accepted_or_echoed,
]


@dataclass(frozen=True)
class Caller:
    api_url: str
    headers: dict[str, str]


@dataclass
class Tally:
    cases: int = 0
    succeeded: int = 0  # 2xx: how much of the suite got past validation and authorization
    failures: list[str] = field(default_factory=list)


def exercise_operation(
    operation: APIOperation, mode: GenerationMode, own: dict[str, str] | None, caller: Caller, tally: Tally
) -> None:
    @GENERATION
    @given(case=operation.as_strategy(mode, path_parameters=own))
    def one(case: Case) -> None:
        tally.cases += 1
        response = case.call(base_url=caller.api_url, headers=caller.headers, timeout=30)
        tally.succeeded += response.status_code < 300
        try:
            case.validate_response(response, checks=CHECKS, headers=caller.headers)
        except FailureGroup as failures:
            tally.failures.append(f"{operation.label} ({mode.value}{', own ids' if own else ''}): {failures}")

    try:
        one()
    except Unsatisfiable:
        pass  # no invalid request exists for an operation without parameters or body


def exercise(contract: BaseSchema, caller: Caller, own: dict[str, str]) -> tuple[int, Tally]:
    """Every operation: valid data, valid data on the caller's own resources (where the path names
    one), invalid data. Blocking, so it runs off the event loop the worker needs."""
    operations = [result.ok() for result in contract.get_all_operations()]  # type: ignore[union-attr]
    tally = Tally()
    for operation in operations:
        names = {parameter.name for parameter in operation.path_parameters}
        exercise_operation(operation, GenerationMode.POSITIVE, None, caller, tally)
        if names:
            ids = {name: value for name, value in own.items() if name in names}
            exercise_operation(operation, GenerationMode.POSITIVE, ids, caller, tally)
        exercise_operation(operation, GenerationMode.NEGATIVE, None, caller, tally)
    return len(operations), tally


@pytest.fixture(scope="module")
def contract(api_url: str) -> BaseSchema:
    # Unknown query parameters are ignored, as HTTP APIs do; every declared one is constrained.
    config = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False}})
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json", config=config)


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Counts go to the terminal even under capture, so a run of `make test` can be quoted."""

    def line(text: str) -> None:
        with capsys.disabled():
            print(f"\n{text}")

    return line


@pytest.mark.parametrize("role", ROLES)
async def test_generated_requests_over_the_contract_find_nothing(
    parties: Parties, contract: BaseSchema, api_url: str, report: Callable[[str], None], role: str
) -> None:
    tx = await parties.captured(5000)
    own = {"tx_id": tx["id"], "user_id": parties.user_id, "merchant_id": parties.merchant_id}
    subject = {"operator": "op_hostile", "merchant": parties.merchant_id, "user": parties.user_id}[role]
    caller = Caller(api_url, parties.auth(role, subject))
    operations, tally = await asyncio.to_thread(exercise, contract, caller, own)
    report(
        f"hostile suite, {role}: {tally.cases} generated cases over {operations} operations "
        f"({tally.succeeded} answered 2xx), {len(tally.failures)} failed"
    )
    assert not tally.failures, "\n".join(tally.failures)


def _examples(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, example body) for every operation whose JSON body has an example."""
    schemas = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            name = ref.get("$ref", "").rsplit("/", 1)[-1]
            for example in schemas.get(name, {}).get("examples", []):
                found.append((method, path.replace("{", "").replace("}", ""), example))
    return found


JSON = {"Content-Type": "application/json"}
LOOSE_NUMBER = "validation_error"  # or `forbidden`: an operator-only route refuses other roles first


def _vectors(example: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(request arguments, the error code it must get) for one example body: the body too deep
    and not UTF-8, then each field with what DESIGN "The edge" refuses in it."""
    yield {"content": b"[" * 40 + b"]" * 40, "headers": JSON}, "nested_too_deep"
    yield {"content": b'{"a": "\xff"}', "headers": JSON}, "unsupported_media_type"
    for name, value in example.items():
        if isinstance(value, str):
            yield {"json": example | {name: "a\u0000b"}}, "nul_character"
            for number in CARD_NUMBERS:
                yield {"json": example | {name: number}}, "card_data_rejected"
        elif isinstance(value, int):
            for loose in (True, 1.0, str(value)):  # amounts are strict integers
                yield {"json": example | {name: loose}}, LOOSE_NUMBER


@pytest.mark.parametrize("role", ROLES)
async def test_explicit_vectors_in_every_field_of_every_body_are_refused(
    api: httpx.AsyncClient, auth: Any, report: Callable[[str], None], role: str
) -> None:
    assert all(contains_card_number(number) for number in CARD_NUMBERS)
    document = (await api.get("/openapi.json")).json()
    token, sent, wrong = auth(role, f"{role}_hostile"), 0, []
    for method, path, example in _examples(document):
        for arguments, code in _vectors(example):
            headers = token | arguments.pop("headers", {})
            response = await api.request(method, path, headers=headers, **arguments)
            sent += 1
            answered = response.json().get("error", {}).get("code")
            refused = answered == code or (code == LOOSE_NUMBER and answered == "forbidden")
            if not refused or contains_card_number(response.text):
                wrong.append(f"{method.upper()} {path} {arguments}: {response.status_code} {response.text}")
    report(f"hostile suite, {role}: {sent} explicit vectors, {len(wrong)} accepted or misanswered")
    assert sent and not wrong, "\n".join(wrong)
