"""One trace per payment: the HTTP request, the workflow, its activities and the Stripe call."""

from opentelemetry.sdk.trace import ReadableSpan

from tests.conftest import RecentSpans
from tests.integration.conftest import Parties
from tests.services import eventually


async def server_span(traces: RecentSpans, name: str) -> ReadableSpan | None:
    return next((s for s in reversed(traces.spans) if s.name == name and s.kind.name == "SERVER"), None)


def lineage(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names from `span` up to the root of its trace."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_runs_from_init_through_the_workflow_to_stripe(parties: Parties, traces: RecentSpans) -> None:
    tx = (await parties.init(700)).json()
    assert tx["status"] == "authorized"
    # The server span ends just after the answer is sent: it may be exported after the client has it.
    init = await eventually(lambda: server_span(traces, "POST /payments/init"), bool, "the init span")
    assert init is not None
    tree = [span for span in traces.spans if span.context.trace_id == init.context.trace_id]
    by_id = {span.context.span_id: span for span in tree}

    stripe_call = next(s for s in tree if str((s.attributes or {}).get("http.url", "")).endswith("/v1/payment_intents"))
    assert lineage(stripe_call, by_id)[:5] == [
        "POST",
        "RunActivity:authorize_payment",
        "StartActivity:authorize_payment",
        "StartUpdateWithStartWorkflow:PaymentWorkflow",
        "POST /payments/init",
    ]
    names = {span.name for span in tree}
    assert {"RunWorkflow:PaymentWorkflow", "RunActivity:record_payment", "RunActivity:record_status"} <= names
    run = next(s for s in tree if s.name == "RunWorkflow:PaymentWorkflow")
    assert "POST /payments/init" in lineage(run, by_id)


async def test_a_refused_card_number_stays_out_of_the_spans(parties: Parties, traces: RecentSpans) -> None:
    pan = "4242424242424242"
    refused = await parties.api.get(f"/payments/tx_{pan}", params={"q": pan}, headers=parties.as_user)
    assert refused.status_code == 400
    span = await eventually(lambda: server_span(traces, "GET /payments/{tx_id}"), bool, "the refused request's span")
    assert span is not None and span.attributes is not None
    assert "[card number]" in str(span.attributes["http.target"])
    assert not any(pan in str(value) for value in span.attributes.values())
