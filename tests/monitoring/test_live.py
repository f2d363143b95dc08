"""deploy/prometheus on a real Prometheus scraping a running Coves.

One Prometheus (Debian's, from scripts/setup-prometheus) loads the shipped
alert rules with only their ``for:`` durations shortened (the expressions are
the shipped ones) and scrapes a Coves started by ``run_server``, every second.
Then:

- every metric named in a rule or a dashboard query is one this Coves exports,
  and every dashboard query parses and runs on Prometheus;
- the consumers cannot reach their Jetstream and their two firehoses (nothing
  listens on their port): CovesConsumerDisconnected fires, once for each source;
- the database goes down while requests keep coming: they get 503s and
  CovesHigh5xxRate fires;

both read back from Prometheus' alerts API.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import trio

from coves.config import test_settings
from coves.secrets import Secret
from nurseries.main import Runtime, run_server
from tests.monitoring.conftest import GRAFANA_DIR, PROMETHEUS_DIR
from tests.monitoring.promql import (
    PROMETHEUS_SERIES,
    dashboard_expressions,
    exported_names,
    for_prometheus,
    metric_names,
)
from tests.support.database import start_test_postgres

SHORT_FOR = "3s"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(work: Path, coves_target: str) -> Path:
    rules = (PROMETHEUS_DIR / "coves-alerts.yml").read_text()
    (work / "coves-alerts.yml").write_text(re.sub(r"\bfor: \d+[smh]\b", f"for: {SHORT_FOR}", rules))
    shipped = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    config = (
        shipped.replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace('"127.0.0.1:8081"', f'"{coves_target}"')
    )
    assert coves_target in config and "scrape_interval: 1s" in config
    path = work / "prometheus.yml"
    path.write_text(config)
    return path


async def _api(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


async def _until(check: Any, what: str, timeout: float = 90.0) -> Any:
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await trio.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s; last: {last}")


async def _firing(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    alerts = (await _api(client, "/api/v1/alerts"))["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]


async def test_prometheus_scrapes_coves_and_the_alerts_fire(prometheus: str, scratch: Path) -> None:
    database = await trio.to_thread.run_sync(start_test_postgres, scratch / "pg")
    database_down = False
    name = await trio.to_thread.run_sync(database.create_database)
    nowhere = _free_port()  # nothing listens here: the consumer cannot connect
    settings = test_settings(
        database_url=Secret(database.conninfo(name)),
        host="127.0.0.1",
        port=0,
        jetstream_enabled=True,
        jetstream_url=f"ws://127.0.0.1:{nowhere}/subscribe",
        jetstream_connect_timeout_seconds=1.0,
        # two firehose sources, equally unreachable: each must be seen on its own
        firehose_urls=(f"ws://127.0.0.1:{nowhere}", f"ws://localhost:{nowhere}"),
        pds_url=f"http://127.0.0.1:{nowhere}",
        pds_health_interval_seconds=1.0,
        pds_health_timeout_seconds=1.0,
        rate_limit_general=1_000_000,
        access_log_enabled=False,
        community_refresh_enabled=True,  # the token refresher's metrics are exported too
    )
    prom_port = _free_port()
    process: subprocess.Popen[bytes] | None = None
    stack = contextlib.ExitStack()
    try:
        with stack, trio.fail_after(240):
            async with trio.open_nursery() as nursery:
                runtime: Runtime = await nursery.start(run_server, settings)
                coves = runtime.bound[0]
                config = _config(scratch, coves.removeprefix("http://"))
                log_file = stack.enter_context(open(scratch / "prometheus.log", "wb"))  # noqa: SIM115
                process = subprocess.Popen(
                    [
                        prometheus,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={scratch / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                        "--log.level=warn",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log_file,
                )
                prom = httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}", timeout=10)
                app = httpx.AsyncClient(base_url=coves, timeout=30)
                async with prom, app:
                    await _scraped(prom, process)
                    await _exports_what_rules_and_dashboards_name(prom, app)

                    # The consumer has never connected: the alert fires by itself.
                    fired = await _until(
                        lambda: _firing(prom, "CovesConsumerDisconnected"), "consumer alert"
                    )
                    assert fired[0]["labels"]["severity"] == "critical"

                    async def every_source_alerting() -> set[str]:
                        firing = await _firing(prom, "CovesConsumerDisconnected")
                        sources = {a["labels"].get("source", "jetstream") for a in firing}
                        return sources if len(sources) == 3 else set()

                    sources = await _until(every_source_alerting, "one alert per source")
                    assert sources == {
                        "jetstream",
                        f"firehose:127.0.0.1:{nowhere}",
                        f"firehose:localhost:{nowhere}",
                    }
                    assert (await _firing(prom, "CovesHigh5xxRate")) == []

                    # The database goes away while clients keep asking.
                    await trio.to_thread.run_sync(database.stop)
                    database_down = True
                    statuses: list[int] = []
                    async with trio.open_nursery() as clients:
                        clients.start_soon(_traffic, app, statuses)
                        fired = await _until(lambda: _firing(prom, "CovesHigh5xxRate"), "5xx alert")
                        clients.cancel_scope.cancel()
                    assert float(fired[0]["value"]) > 0.05
                    assert statuses and set(statuses) == {503}
                    rate = await _api(
                        prom,
                        "/api/v1/query",
                        query='sum(rate(coves_http_requests_total{status="503"}[1m]))',
                    )
                    assert float(rate["result"][0]["value"][1]) > 0
                nursery.cancel_scope.cancel()
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
            stack.close()
        if not database_down:
            await trio.to_thread.run_sync(database.stop)


async def _scraped(prom: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    async def target_up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}")
        try:
            targets = (await _api(prom, "/api/v1/targets"))["activeTargets"]
        except (httpx.TransportError, ValueError):
            return False
        return any(t["labels"]["job"] == "coves" and t["health"] == "up" for t in targets)

    await _until(target_up, "the coves target being scraped")
    loaded = await _api(prom, "/api/v1/rules")
    alerts = {rule["name"] for group in loaded["groups"] for rule in group["rules"]}
    assert len(alerts) == 19 and "CovesHigh5xxRate" in alerts


async def _exports_what_rules_and_dashboards_name(
    prom: httpx.AsyncClient, app: httpx.AsyncClient
) -> None:
    metrics = await app.get("/metrics")
    assert metrics.status_code == 200
    exported = exported_names(metrics.text)

    loaded = await _api(prom, "/api/v1/rules")
    rule_exprs = {rule["name"]: rule["query"] for g in loaded["groups"] for rule in g["rules"]}
    for alert, expr in rule_exprs.items():
        missing = metric_names(expr) - exported - PROMETHEUS_SERIES
        assert not missing, f"alert {alert} names metrics Coves does not export: {missing}"

    for path in sorted(GRAFANA_DIR.glob("*.json")):
        for expr in dashboard_expressions(path):
            missing = metric_names(expr) - exported
            assert not missing, f"{path.name}: {expr} names unexported {missing}"
            # Prometheus parses and runs it (with Grafana's variables filled in).
            await _api(prom, "/api/v1/query", query=for_prometheus(expr))

    # What Prometheus stored is what Coves served.
    scraped = await _api(prom, "/api/v1/label/__name__/values")
    assert "coves_jetstream_connection_state" in scraped and "coves_pds_up" in scraped
    assert "coves_firehose_connection_state" in scraped
    assert "coves_db_query_duration_seconds_bucket" in scraped  # the server's own queries


async def _traffic(app: httpx.AsyncClient, statuses: list[int]) -> None:
    """Clients reading communities: 10 requests at a time, until cancelled."""

    async def one() -> None:
        response = await app.get("/xrpc/social.coves.community.list")
        statuses.append(response.status_code)

    while True:
        async with trio.open_nursery() as batch:
            for _ in range(10):
                batch.start_soon(one)
        await trio.sleep(0.2)
