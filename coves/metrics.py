"""Prometheus metrics, one registry per running app.

A registry per instance (not the global default) keeps tests independent.
Components register their own metrics through the factory methods, which
return the existing metric when asked twice for the same name, so modules
need not coordinate who creates what.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CallbackCollector(Collector):
    def __init__(self, fn: Callable[[], Iterable[GaugeMetricFamily]]) -> None:
        self._fn = fn

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._fn()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        self.requests = self.counter(
            "coves_http_requests_total", "XRPC requests by NSID and status", ["nsid", "status"]
        )
        self.latency = self.histogram(
            "coves_http_request_duration_seconds",
            "XRPC request latency by NSID and status",
            ["nsid", "status"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = self.gauge("coves_http_requests_in_flight", "requests being handled")
        self.child_restarts = self.counter(
            "coves_child_restarts_total", "supervised child restarts", ["child"]
        )
        self.rate_limited = self.counter(
            "coves_rate_limited_total", "requests refused by a rate limit", ["limit"]
        )

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        metric = self._metrics.get(name)
        if metric is None:
            metric = Counter(name, doc, list(labels), registry=self.registry)
            self._metrics[name] = metric
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        metric = self._metrics.get(name)
        if metric is None:
            metric = Gauge(name, doc, list(labels), registry=self.registry)
            self._metrics[name] = metric
        assert isinstance(metric, Gauge)
        return metric

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        metric = self._metrics.get(name)
        if metric is None:
            metric = Histogram(name, doc, list(labels), buckets=buckets, registry=self.registry)
            self._metrics[name] = metric
        assert isinstance(metric, Histogram)
        return metric

    def add_callback(self, key: str, fn: Callable[[], Iterable[GaugeMetricFamily]]) -> None:
        """Metrics computed at scrape time (pool stats, child states)."""
        if key in self._metrics:
            return
        collector = _CallbackCollector(fn)
        self.registry.register(collector)
        self._metrics[key] = collector

    def render(self) -> bytes:
        return generate_latest(self.registry)
