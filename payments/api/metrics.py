"""The API's `/metrics` (Prometheus text): request latency by route template, method and status.
Labels are templates (`/payments/{tx_id}`), never the ids in a path."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Route
from starlette.types import Scope

REGISTRY = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "payments_http_request_duration_seconds",
    "API request latency, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)

PARTY_LOOKUPS = Counter(
    "payments_party_cache_lookups",
    "User and merchant lookups, by kind and whether Redis had the entry",
    ["kind", "result"],
    registry=REGISTRY,
)

INITS_IN_FLIGHT = Gauge(
    "payments_inits_in_flight", "Payment inits waiting on Temporal in this API process", registry=REGISTRY
)
INITS_SHED = Counter(
    "payments_inits_shed", "Payment inits refused with 503 because this process was at capacity", registry=REGISTRY
)

OWN_MOVES = Counter(
    "payments_stripe_own_moves",
    "Stripe webhooks of our own capture or void, by what the API found: the row recorded it "
    "(within the pauses it is given), its workflow still running, or a catch-up started for it",
    ["found"],
    registry=REGISTRY,
)
for _found in ("recorded", "workflow_running", "caught_up"):
    OWN_MOVES.labels(_found)  # each series from 0, so that the first increment shows in increase()

router = APIRouter()


def count_party_lookup(kind: str, hit: bool) -> None:
    PARTY_LOOKUPS.labels(kind, "hit" if hit else "miss").inc()


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    route = scope.get("route")
    # No route: refused before routing (card data, host) or not found; the path is not a label.
    template = route.path if isinstance(route, Route) else "unrouted"
    REQUEST_SECONDS.labels(template, scope["method"], str(status)).observe(seconds)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
