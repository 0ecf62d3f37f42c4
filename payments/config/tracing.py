"""OpenTelemetry traces: one trace from the HTTP request through the workflow and its activities
to the Stripe call. On only when a tracer provider is installed: by `start_tracing` when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP), or by the tests (in memory)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from payments.config.card_numbers import contains_card_number, redact_card_numbers

# Span attributes that carry the request's path or query: a card number in them is redacted
# (the PAN guard refuses such a request, but its span is started before the guard runs).
_URL_ATTRIBUTES = ("url.path", "url.query", "url.full", "http.target", "http.url")


def start_tracing(service: str, otlp_endpoint: str | None, processor: SpanProcessor | None = None) -> None:
    """Install the process's tracer provider, exporting to `otlp_endpoint` (or to `processor`);
    with neither, tracing stays off."""
    if otlp_endpoint is None and processor is None:
        return
    if processor is None:
        assert otlp_endpoint is not None
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    AioHttpClientInstrumentor().instrument()  # the Stripe SDK's calls
    HTTPXClientInstrumentor().instrument()  # merchant webhooks' deliveries, among others


def tracing_enabled() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def temporal_interceptors() -> list[ClientInterceptor]:
    """Client interceptors: a worker built on the client traces its workflows and activities too."""
    return [TracingInterceptor()] if tracing_enabled() else []


def _without_card_numbers(span: Any, scope: dict[str, Any]) -> None:
    url = unquote(scope.get("path", "") + "?" + scope.get("query_string", b"").decode("latin-1"))
    if span.is_recording() and contains_card_number(url):
        for name in _URL_ATTRIBUTES:
            span.set_attribute(name, redact_card_numbers(url, "[card number]"))


def trace_requests(app: FastAPI) -> None:
    if tracing_enabled():
        FastAPIInstrumentor.instrument_app(
            app,
            excluded_urls="metrics,health",
            exclude_spans=["receive", "send"],
            server_request_hook=_without_card_numbers,
        )
