"""The worker's `/metrics`: the Temporal SDK's own metrics (served by the SDK runtime on a private
port) and our business metrics (payments/activities/metrics.py), one Prometheus text page on
`PAYMENTS_WORKER_METRICS_PORT`."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

from prometheus_client import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from payments.activities.metrics import REGISTRY
from payments.config.ports import free_port


class _SdkMetrics(Collector):
    """Re-exposes what the SDK runtime's Prometheus endpoint serves, at each scrape."""

    def __init__(self, url: str) -> None:
        self._url = url

    def collect(self) -> Iterator[Metric]:
        with urllib.request.urlopen(self._url, timeout=5) as answer:  # noqa: S310 (our own 127.0.0.1 URL)
            yield from text_string_to_metric_families(answer.read().decode())


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> Runtime:
    """Start `/metrics` on host:port and return the SDK runtime whose metrics it includes: the
    worker's client must be connected with that runtime. OSError: the port is taken."""
    start_http_server(port, host, registry=REGISTRY)
    sdk_address = f"127.0.0.1:{free_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=sdk_address, counters_total_suffix=True, durations_as_seconds=True)
        )
    )
    REGISTRY.register(_SdkMetrics(f"http://{sdk_address}/metrics"))
    return runtime
