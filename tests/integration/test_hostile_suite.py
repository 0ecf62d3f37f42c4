"""Hostile input over the whole published contract, for each role, against the real stack:
requests generated from the OpenAPI document (valid and invalid), then explicit card-number
vectors in every string field of every example body. None may be a server error, break the
document, or have a card number accepted or echoed.

Bounded (a few examples per operation and mode) and seeded (derandomized) so CI stays fast and
repeatable; the counts are written to the terminal so they can be quoted."""

import asyncio
import json
from collections.abc import Callable
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

SUBJECTS = {"operator": "op_hostile", "merchant": "mer_hostile", "user": "usr_hostile"}
EXAMPLES_PER_MODE = 20  # per operation, for each of valid and invalid data
GENERATION = settings(
    max_examples=EXAMPLES_PER_MODE,
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


@dataclass
class Tally:
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def exercise_operation(
    operation: APIOperation, mode: GenerationMode, api_url: str, headers: dict, tally: Tally
) -> None:
    @GENERATION
    @given(case=operation.as_strategy(mode))
    def one(case: Case) -> None:
        tally.cases += 1
        response = case.call(base_url=api_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as failures:
            tally.failures.append(f"{operation.label} ({mode.value}): {failures}")

    try:
        one()
    except Unsatisfiable:
        pass  # no invalid request exists for an operation without parameters or body


def exercise(contract: BaseSchema, api_url: str, headers: dict[str, str]) -> tuple[int, Tally]:
    """Every operation, valid then invalid data; blocking, so it runs off the event loop."""
    operations = [result.ok() for result in contract.get_all_operations()]  # type: ignore[union-attr]
    tally = Tally()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise_operation(operation, mode, api_url, headers, tally)
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


@pytest.mark.parametrize("role", SUBJECTS)
async def test_generated_requests_over_the_contract_find_nothing(
    api: httpx.AsyncClient, contract: BaseSchema, api_url: str, auth: Any, report: Callable[[str], None], role: str
) -> None:
    operations, tally = await asyncio.to_thread(exercise, contract, api_url, auth(role, SUBJECTS[role]))
    report(
        f"hostile suite, {role}: {tally.cases} generated cases, {operations} operations, {len(tally.failures)} failed"
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


@pytest.mark.parametrize("role", SUBJECTS)
async def test_a_card_number_in_any_field_of_any_body_is_refused(
    api: httpx.AsyncClient, auth: Any, report: Callable[[str], None], role: str
) -> None:
    assert all(contains_card_number(number) for number in CARD_NUMBERS)
    document = (await api.get("/openapi.json")).json()
    headers, sent, wrong = auth(role, SUBJECTS[role]), 0, []
    for method, path, example in _examples(document):
        for name in [key for key, value in example.items() if isinstance(value, str)]:
            for number in CARD_NUMBERS:
                response = await api.request(method, path, json=example | {name: number}, headers=headers)
                sent += 1
                if response.status_code != 400 or response.json()["error"]["code"] != "card_data_rejected":
                    wrong.append(f"{method.upper()} {path} {name}={number!r}: {response.status_code}")
    report(f"hostile suite, {role}: {sent} card-number vectors, {len(wrong)} accepted or misanswered")
    assert sent and not wrong, wrong
