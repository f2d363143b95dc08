"""Interpreter tuning applied when a server starts (never at import): the GIL
switch interval and the garbage collector.

The GIL switch interval decides how long the event loop thread may keep
the GIL while a database worker thread has a result ready (and the other
way round). Python's default of 5 ms is long next to a read request's
sub-millisecond work; a shorter interval shortens those handoffs. See
``SWITCH_INTERVAL_SECONDS`` and docs/performance.md for the measurements.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from coves.metrics import Metrics


def apply_switch_interval(seconds: float) -> float | None:
    """Set ``sys.setswitchinterval`` (0: keep Python's default); return the previous value."""
    if seconds <= 0:
        return None
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    return previous


# -- the garbage collector ---------------------------------------------------------------
#
# Under load the cyclic collector took 15-25% of the server's wall time, with
# full (gen-2) collections of 0.2-1 s that grew with the caches' heap while
# freeing almost nothing: request handling allocates many short-lived
# containers but makes few cycles, and everything long-lived (modules,
# lexicons, compiled validators, caches) is traversed again by every full
# collection. Two levers, both settings (GC_THRESHOLDS, GC_FREEZE):
# - higher thresholds: young collections every 50 000 net allocations instead
#   of 700, so far fewer of them and far fewer promotions into older
#   generations;
# - gc.freeze() once start-up is done: what start-up allocated moves to a
#   permanent generation no collection traverses (objects there are still
#   freed by reference counting; only cycles among them would be kept).


def apply_gc_thresholds(thresholds: Sequence[int]) -> tuple[int, ...]:
    """Set the collector's thresholds (missing generations keep Python's); return the old."""
    previous = gc.get_threshold()
    values = list(previous)
    for i, value in enumerate(thresholds[:3]):
        values[i] = value
    gc.set_threshold(*values)
    return previous


def freeze_startup_heap() -> int:
    """Collect once, then put every surviving object out of the collector's reach.

    Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcMetrics:
    """Time the collector spends, per generation, from ``gc.callbacks``.

    The callback only adds to plain numbers: it runs wherever a collection
    happens to start, possibly while prometheus_client holds its (in
    multi-process mode, global and non-reentrant) lock, so it must not touch
    a metric itself. The totals are read at scrape time instead.
    ``coves_gc_seconds_total`` is what the traffic benchmark reports as GC time.
    """

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self.collected = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = min(2, max(0, info.get("generation", 2)))
        self.seconds[generation] += took
        self.collections[generation] += 1
        self.collected[generation] += info.get("collected", 0)
        self.longest[generation] = max(self.longest[generation], took)

    def collect(self) -> list[Metric]:
        seconds = CounterMetricFamily(
            "coves_gc_seconds", "time spent in garbage collection", labels=["generation"]
        )
        collections = CounterMetricFamily(
            "coves_gc_collections", "garbage collections", labels=["generation"]
        )
        collected = CounterMetricFamily(
            "coves_gc_collected", "objects freed by garbage collection", labels=["generation"]
        )
        longest = GaugeMetricFamily(
            "coves_gc_longest_pause_seconds",
            "longest single garbage collection since start",
            labels=["generation"],
        )
        for generation in range(3):
            label = [str(generation)]
            seconds.add_metric(label, self.seconds[generation])
            collections.add_metric(label, self.collections[generation])
            collected.add_metric(label, self.collected[generation])
            longest.add_metric(label, self.longest[generation])
        return [seconds, collections, collected, longest]

    def install(self, metrics: Metrics) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        metrics.add_callback("coves_gc", self.collect)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
