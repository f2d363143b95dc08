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
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from coves import pids

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory when this process is one of several, else None."""
    return os.environ.get(MULTIPROCESS_ENV) or None


def make_multiprocess_dir(data_dir: Path) -> str:
    """A fresh directory for this deployment's metric files, under ``data_dir/metrics``.

    It lives in the data directory rather than /tmp so a supervisor killed
    with SIGKILL (which cannot remove it) leaves it where the next start
    finds it: directories named for a process that is gone are removed
    here, while those of a live deployment sharing the data directory are
    left alone. Reusing a dead run's files instead would add its counters
    to the new run's.
    """
    base = data_dir / "metrics"
    base.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        owner, _, _ = entry.name.partition("-")
        if entry.is_dir() and owner.isdigit() and not pids.alive(int(owner)):
            shutil.rmtree(entry, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base)


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
    """Every scrape-time callback, as one collector: families of the same name from
    several callbacks (one consumer per firehose source, each labelling its samples
    with its source) become one family, as Prometheus requires."""

    def __init__(self) -> None:
        self.fns: dict[str, Callable[[], Iterable[Metric]]] = {}

    def collect(self) -> Iterable[Metric]:
        return merged(fn() for fn in self.fns.values())


def merged(batches: Iterable[Iterable[Metric]]) -> list[Metric]:
    """The families of every batch, those sharing a name merged into one."""
    families: dict[str, Metric] = {}
    for batch in batches:
        for family in batch:
            first = families.get(family.name)
            if first is None:
                families[family.name] = family
            else:
                first.samples.extend(family.samples)
    return list(families.values())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        self.multiprocess = multiprocess_dir() is not None
        self._callbacks = _CallbackCollector()
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
        """Metrics computed at scrape time (pool stats, child states). One callback per
        ``key`` (asked again, the first stays); callbacks under different keys may emit
        families of the same name (with different labels): they are merged."""
        if key in self._callbacks.fns:
            return
        if not self._callbacks.fns and not self.multiprocess:
            self.registry.register(self._callbacks)
        self._callbacks.fns[key] = fn

    def publish_callbacks(self) -> None:
        """Several processes: write the callbacks' current values where every process's
        /metrics reads them (gauges labelled with this process's pid). One process: no-op."""
        if not self.multiprocess:
            return
        for family in self._callbacks.collect():
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
