"""The metric names there are to query: ours (the worker's and the API's prometheus-client
registries), the Temporal SDK's and the Temporal server's that the dashboard and the alerts read,
the names a PromQL expression queries, and what a scraped page says of one."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from payments.activities.metrics import REGISTRY as WORKER
from payments.api.metrics import REGISTRY as API

# Served by the SDK runtime (tests/integration/operating/test_metrics.py scrapes them from a worker).
SDK = {"temporal_workflow_task_schedule_to_start_latency_bucket"}
# Served by the Temporal server (the same test scrapes them from the dev server).
TEMPORAL_SERVER = {"workflow_task_attempt_count", "workflow_task_attempt_bucket"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
# What is not a metric in an expression: label lists of grouping and matching, label matchers,
# ranges, strings, keywords; a name followed by `(` is a function.
_NOT_METRICS = re.compile(
    r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}|\[[^]]*\]|"[^"]*"'
)
_NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def exported(registry: CollectorRegistry) -> set[str]:
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def queryable() -> set[str]:
    return exported(WORKER) | exported(API) | SDK | TEMPORAL_SERVER


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (numbers and keywords are not names)."""
    return {name for name in _NAME.findall(_NOT_METRICS.sub(" ", expr)) if name not in _KEYWORDS}


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
