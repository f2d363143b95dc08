"""The garbage-collector policy: thresholds, the start-up freeze, GC time in /metrics."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from coves.config import ConfigError, load_settings
from coves.interpreter import GcMetrics, apply_gc_thresholds, freeze_startup_heap
from coves.metrics import Metrics


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def test_thresholds_are_set_and_missing_generations_kept(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    assert apply_gc_thresholds((50_000, 20, 100)) == (700, 10, 10)
    assert gc.get_threshold() == (50_000, 20, 100)
    apply_gc_thresholds((1000,))
    assert gc.get_threshold() == (1000, 20, 100)


def test_the_startup_heap_is_frozen(restore_gc: None) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    frozen = freeze_startup_heap()
    assert frozen > 1000  # modules, classes, functions: the start-up heap
    assert gc.get_freeze_count() == frozen


def test_collections_are_timed_per_generation() -> None:
    metrics = Metrics()
    timer = GcMetrics()
    timer.install(metrics)
    try:
        gc.collect(1)
        gc.collect()
    finally:
        timer.uninstall()
    assert timer.collections[1] >= 1 and timer.collections[2] >= 1
    assert timer.seconds[2] > 0 and timer.longest[2] > 0
    text = metrics.render().decode()
    assert 'coves_gc_collections_total{generation="2"}' in text
    assert f'coves_gc_seconds_total{{generation="2"}} {timer.seconds[2]}' in text
    before = timer.collections[2]
    gc.collect()
    assert timer.collections[2] == before  # uninstalled: no longer counting


@pytest.mark.parametrize("raw", ["a,b", "1,2,3,4", "-5", ""])
def test_bad_thresholds_are_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="GC_THRESHOLDS"):
        load_settings({"GC_THRESHOLDS": raw}, dotenv=None)


def test_thresholds_and_freeze_are_settings() -> None:
    settings = load_settings({"GC_THRESHOLDS": "1000,5", "GC_FREEZE": "false"}, dotenv=None)
    assert settings.gc_thresholds == (1000, 5)
    assert settings.gc_freeze is False
    assert load_settings({}, dotenv=None).gc_thresholds == (50_000, 20, 100)
