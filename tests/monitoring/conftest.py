"""Fixtures for the monitoring tests: Debian's Prometheus, installed by scripts/setup-prometheus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: scripts/bootstrap installs it with scripts/setup-prometheus "
            "(Debian's prometheus package, as root)"
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return _tool("prometheus")
