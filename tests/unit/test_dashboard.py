"""The Grafana dashboard queries only metrics the API and the worker export."""

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from activities.metrics import REGISTRY as WORKER
from api.metrics import REGISTRY as API

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "payments.json"
# The Temporal SDK's metrics are served by its runtime; these are the ones the dashboard reads.
SDK = {"temporal_workflow_task_schedule_to_start_latency_bucket"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported(registry: CollectorRegistry) -> set[str]:
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\b(?:payments|temporal)_[a-z0-9_]+", target["expr"])
    }
    assert len(queried) >= 8
    assert queried <= exported(WORKER) | exported(API) | SDK
