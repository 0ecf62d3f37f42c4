"""The OpenAPI document is the contract (docs/design.md, "The edge"): errors, roles, enums,
examples and timezones are in it, and /docs renders it from assets the API serves itself."""

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from payments.api import models
from payments.schema.tables import (
    DISPUTE_STATUSES,
    PAYOUT_STATUSES,
    REFUND_STATUSES,
    RESOLUTION_STATUSES,
    TRANSACTION_STATUSES,
)

ROLES = re.compile(r"\((.*\b(user|merchant|operator|anyone|Stripe)\b.*)\)$")


@pytest.fixture(scope="module")
def document(api_url: str) -> dict[str, Any]:
    return httpx.get(f"{api_url}/openapi.json").raise_for_status().json()


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_operation_names_its_roles_and_documents_its_errors_in_the_envelope(document: dict) -> None:
    for name, operation in _operations(document):
        assert ROLES.search(operation["summary"]), name
        errors = {status: r for status, r in operation["responses"].items() if status >= "400"}
        assert {"400", "415", "422", "429", "503"} <= errors.keys(), name
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (name, status)
            codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
            assert set(codes) == set(response["content"]["application/json"]["examples"]), (name, status)
        assert "validation_error" in errors["422"]["description"], name
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_routes_list_the_codes_they_raise(document: dict) -> None:
    def codes(path: str, method: str, status: str) -> str:
        return document["paths"][path][method]["responses"][status]["description"]

    assert "`payment_state_conflict`" in codes("/payments/confirm", "post", "409")
    assert "`invalid_capture_amount`" in codes("/payments/confirm", "post", "422")
    assert "`refund_exceeds_captured`" in codes("/payments/{tx_id}/refunds", "post", "409")
    assert "`dispute_not_open`" in codes("/disputes/{dispute_id}/evidence", "post", "409")
    assert "`not_found`" in codes("/disputes/{dispute_id}/accept", "post", "404")
    assert "`invalid_cursor`" in codes("/disputes", "get", "400")
    assert "`invalid_cursor`" in codes("/transactions/{user_id}", "get", "400")
    assert "`unauthorized`" in codes("/payments/{tx_id}", "get", "401")
    assert "`not_ready`" in codes("/readyz", "get", "503")
    assert "Retry-After" in document["paths"]["/payouts/schedule"]["post"]["responses"]["429"]["headers"]
    assert "`idempotency_key_required`" in codes("/payouts/schedule", "post", "400")
    assert "`idempotency_key_reused`" in codes("/payouts/schedule", "post", "422")
    assert "`idempotency_key_required`" in codes("/payments/init", "post", "400")


def test_statuses_are_enums_and_request_bodies_have_examples(document: dict) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["TransactionOut"]["properties"]["status"]["enum"] == list(TRANSACTION_STATUSES)
    assert schemas["RefundOut"]["properties"]["status"]["enum"] == list(REFUND_STATUSES)
    assert schemas["PayoutOut"]["properties"]["status"]["enum"] == list(PAYOUT_STATUSES)
    assert schemas["DisputeOut"]["properties"]["status"]["enum"] == list(DISPUTE_STATUSES)
    assert schemas["ReconciliationLogOut"]["properties"]["resolution_status"]["enum"] == list(RESOLUTION_STATUSES)
    assert schemas["ReconciliationRunOut"]["properties"]["status"]["enum"] == ["running", "finished"]
    for name, operation in _operations(document):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body and "$ref" in body["schema"]:
            assert schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]["examples"], name


ANSWERS = [
    models.TransactionOut,
    models.RefundOut,
    models.PayoutOut,
    models.ReconciliationRunOut,
    models.ReconciliationLogOut,
    models.DisputeOut,
]


@pytest.mark.parametrize("model", ANSWERS, ids=lambda m: m.__name__)
def test_no_answer_carries_a_timestamp_without_its_timezone(model: type[BaseModel]) -> None:
    """Every field that takes a timestamp refuses one without a timezone (it would be ambiguous)."""
    aware, naive = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1)
    timestamps = 0
    for field in model.model_fields.values():
        adapter: TypeAdapter[Any] = TypeAdapter(field.annotation or Any)
        try:
            adapter.validate_python(aware)
        except ValidationError:
            continue
        timestamps += 1
        with pytest.raises(ValidationError):
            adapter.validate_python(naive)
    assert timestamps


def test_a_405_says_which_methods_are_allowed(api_url: str) -> None:
    response = httpx.delete(f"{api_url}/payments/tx_1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_what_the_api_serves(api_url: str, page: str) -> None:
    html = httpx.get(f"{api_url}{page}").raise_for_status().text
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert urls and all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http://" not in html and "https://" not in html
    for url in urls:
        assert httpx.get(f"{api_url}{url}").status_code == 200, url
