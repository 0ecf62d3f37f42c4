"""The Grafana dashboard queries only metrics the API, the worker and the Temporal server export."""

import json
from pathlib import Path

from tests.exported_metrics import metrics_in, queryable

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "payments.json"


def queried_by_dashboard() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {name for panel in panels for target in panel["targets"] for name in metrics_in(target["expr"])}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    queried = queried_by_dashboard()
    assert len(queried) >= 8
    assert queried <= queryable()


def test_names_are_read_from_expressions_without_functions_labels_or_numbers() -> None:
    expr = 'sum by (le) (rate(a_bucket{le=~"1|1.0"}[5m])) - on() max(b) > 3600 and bool c'
    assert metrics_in(expr) == {"a_bucket", "b", "c"}
