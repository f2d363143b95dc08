"""deploy/prometheus and deploy/grafana as files: promtool's checks, the rule unit tests,
the dashboards in step with their generator. (The live checks are in test_live.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.monitoring.conftest import GRAFANA_DIR, PROMETHEUS_DIR, ROOT
from tests.monitoring.promql import dashboard_expressions, metric_names


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_config_and_the_rules(promtool: str) -> None:
    config = _run(promtool, "check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _run(promtool, "check", "rules", "coves-alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 19 rules found" in rules.stdout


def test_every_alert_fires_in_its_unit_test(promtool: str) -> None:
    result = _run(promtool, "test", "rules", "coves-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tests = (PROMETHEUS_DIR / "coves-alerts.test.yml").read_text()
    alerts = [
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS_DIR / "coves-alerts.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert len(alerts) == 19
    for alert in alerts:  # each one is shown firing, not only parsed
        firing = re.search(
            rf"alertname: {alert}\n        exp_alerts:(?:  #[^\n]*)?\n          - exp_labels:",
            tests,
        )
        assert firing, alert


def test_a_broken_rule_is_refused(promtool: str, tmp_path: object) -> None:
    from pathlib import Path

    broken = Path(str(tmp_path)) / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n"
    )
    result = _run(promtool, "check", "rules", str(broken))
    assert result.returncode != 0


def test_dashboards_match_their_generator() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_dashboards"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dashboards_are_importable_and_cover_the_issue() -> None:
    uids = set()
    names: set[str] = set()
    for path in sorted(GRAFANA_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        assert data["__inputs"][0]["pluginId"] == "prometheus"
        assert data["uid"] not in uids
        uids.add(data["uid"])
        ids = [panel["id"] for panel in data["panels"]]
        assert len(ids) == len(set(ids))
        for panel in data["panels"]:
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        for expr in dashboard_expressions(path):
            names |= metric_names(expr)
    assert uids == {"coves-http", "coves-database", "coves-ingestion", "coves-services"}
    # What the issue asks the dashboards to show.
    for wanted in (
        "coves_http_requests_total",
        "coves_http_request_duration_seconds_bucket",
        "coves_db_pool_waiting",
        "coves_db_query_duration_seconds_bucket",
        "coves_db_slow_queries_total",
        "coves_ingest_events_total",
        "coves_jetstream_lag_seconds",
        "coves_jetstream_apply_seconds_bucket",
        "coves_ingest_dead_letters_total",
        "coves_pds_up",
        "coves_auth_successes_total",
        "coves_backup_last_success_timestamp_seconds",
    ):
        assert wanted in names, wanted
