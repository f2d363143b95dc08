"""Prometheus metrics, one registry per running app.

A registry per instance (not the global default) keeps tests independent.
Components register their own metrics through the factory methods, which
return the existing metric when asked twice for the same name, so modules
need not coordinate who creates what.

Several processes (``coves serve --workers N``): the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` for its children before they import
prometheus_client, which then keeps every value in a file per process;
``/metrics`` on any worker adds them all up (counters and histograms summed,
gauges summed over live processes), so a scrape of the shared port sees the
deployment, not whichever worker answered. Scrape-time callbacks (pool
statistics, child states, ingestion lag) cannot be read across processes:
there each process publishes them as gauges with a ``pid`` label on its
heartbeat (:meth:`Metrics.publish_callbacks`), a couple of seconds old at
most.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process is one of several, else None."""
    return os.environ.get(MULTIPROCESS_ENV) or None


def enable_multiprocess(directory: str) -> None:
    """Keep metric values in ``directory`` from now on (before any metric is made).

    prometheus_client picks where values live when it is imported; the
    supervisor decides only after reading its arguments, by which time the
    subcommand modules have imported it, so the choice is made again here
    (the library looks ``values.ValueClass`` up at each metric's creation).
    """
    from prometheus_client import values

    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CallbackCollector(Collector):
    def __init__(self, fn: Callable[[], Iterable[Metric]]) -> None:
        self._fn = fn

    def collect(self) -> Iterable[Metric]:
        return self._fn()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        self.multiprocess = multiprocess_dir() is not None
        self._callbacks: dict[str, Callable[[], Iterable[Metric]]] = {}
        self._published: dict[str, Gauge] = {}
        self._published_registry = CollectorRegistry(auto_describe=False)
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
            # Across processes a gauge is the sum over the live ones (in flight, ...).
            metric = Gauge(
                name, doc, list(labels), registry=self.registry, multiprocess_mode="livesum"
            )
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

    def add_callback(self, key: str, fn: Callable[[], Iterable[Metric]]) -> None:
        """Metrics computed at scrape time (pool stats, child states)."""
        if key in self._metrics:
            return
        if self.multiprocess:
            self._callbacks[key] = fn
            self._metrics[key] = fn
            return
        collector = _CallbackCollector(fn)
        self.registry.register(collector)
        self._metrics[key] = collector

    def publish_callbacks(self) -> None:
        """Several processes: write the callbacks' current values where every process's
        /metrics reads them (gauges labelled with this process's pid). One process: no-op."""
        if not self.multiprocess:
            return
        for fn in self._callbacks.values():
            for family in fn():
                for sample in family.samples:
                    gauge = self._published.get(sample.name)
                    if gauge is None:
                        gauge = Gauge(
                            sample.name,
                            family.documentation,
                            sorted(sample.labels),
                            registry=self._published_registry,
                            multiprocess_mode="liveall",
                        )
                        self._published[sample.name] = gauge
                    child = gauge.labels(**sample.labels) if sample.labels else gauge
                    child.set(sample.value)

    def render(self) -> bytes:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
