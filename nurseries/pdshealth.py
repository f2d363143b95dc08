"""The PDS health probe: a small child that calls the instance PDS's ``/xrpc/_health``.

Community accounts live on the instance PDS (``PDS_URL``); when it is down,
creating or updating communities and refreshing their tokens fail, while
reads keep working. So the probe is not critical to ``_health`` (Coves stays
"ok"), but it publishes what it sees: ``coves_pds_up`` and the checks by
result for the alert, its latency for the dashboard, and the details
(last success, consecutive failures, the PDS version) for ``_health`` and
``coves status``.

A check succeeds on HTTP 200 with a JSON object body, as the reference PDS
answers (``{"version": ...}``). Anything else counts as down, and so does no
answer within ``PDS_HEALTH_TIMEOUT_SECONDS``: a PDS that hangs is a PDS that
is down for the requests waiting on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import trio

from coves import clock
from coves.logs import get_logger
from coves.metrics import Metrics
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)

RESULTS = ("ok", "timeout", "unreachable", "bad_status", "bad_body")
CHECK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ClientFactory = Callable[[], httpx.AsyncClient]


class PdsHealthProbe:
    def __init__(
        self,
        pds_url: str,
        *,
        interval: float,
        timeout: float,
        metrics: Metrics,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.url = pds_url.rstrip("/") + "/xrpc/_health"
        self.interval = interval
        self.timeout = timeout
        self._client_factory = client_factory or httpx.AsyncClient
        self._up = metrics.gauge("coves_pds_up", "1 when the last PDS health check succeeded")
        self._checks = metrics.counter(
            "coves_pds_health_checks_total", "PDS health checks by result", ["result"]
        )
        for result in RESULTS:  # every series exists from the start, for rate() and alerts
            self._checks.labels(result)
        self._seconds = metrics.histogram(
            "coves_pds_health_check_seconds", "PDS health check latency", buckets=CHECK_BUCKETS
        )
        self._last_ok = metrics.gauge(
            "coves_pds_last_success_timestamp_seconds", "when a PDS health check last succeeded"
        )
        self.state = "unknown"
        self.version: str | None = None
        self.last_error: str | None = None
        self.last_check_at: float | None = None  # wall time
        self.last_success_at: float | None = None
        self.consecutive_failures = 0
        self.latency: float | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self._client_factory() as client:
            task_status.started()
            while True:
                await self.check(client)
                await trio.sleep(self.interval)

    async def check(self, client: httpx.AsyncClient) -> bool:
        started = clock.monotonic()
        result, error, version = "ok", None, None
        with trio.move_on_after(self.timeout) as scope:
            try:
                response = await client.get(self.url, timeout=self.timeout)
                body = response.json() if response.status_code == 200 else None
                if response.status_code != 200:
                    result, error = "bad_status", f"HTTP {response.status_code}"
                elif not isinstance(body, dict):
                    result, error = "bad_body", "the answer is not a JSON object"
                else:
                    version = body.get("version")
            except httpx.TimeoutException:
                result, error = "timeout", f"no answer within {self.timeout:g}s"
            except ValueError:
                result, error = "bad_body", "the answer is not JSON"
            except httpx.HTTPError as exc:
                result, error = "unreachable", f"{type(exc).__name__}: {exc}"
        if scope.cancelled_caught:
            result, error = "timeout", f"no answer within {self.timeout:g}s"
        self.latency = clock.monotonic() - started
        self._seconds.observe(self.latency)
        self._checks.labels(result).inc()
        self.last_check_at = clock.wall_now()
        ok = result == "ok"
        if ok:
            if self.state == "down":
                log.info(
                    "PDS is healthy again", pds=self.url, after_failures=self.consecutive_failures
                )
            self.state, self.last_error, self.consecutive_failures = "up", None, 0
            self.version = str(version) if version is not None else None
            self.last_success_at = self.last_check_at
            self._last_ok.set(self.last_success_at)
        else:
            self.consecutive_failures += 1
            if self.state != "down":
                log.warning("PDS health check failed", pds=self.url, result=result, error=error)
            self.state, self.last_error = "down", error
        self._up.set(1.0 if ok else 0.0)
        return ok

    def details(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state,
            "version": self.version,
            "consecutiveFailures": self.consecutive_failures,
            "lastError": self.last_error,
            "lastCheck": _iso(self.last_check_at),
            "lastSuccess": _iso(self.last_success_at),
            "latencyMs": None if self.latency is None else round(self.latency * 1000, 1),
        }


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds")


def pds_health_child(
    pds_url: str, *, interval: float, timeout: float, metrics: Metrics
) -> ChildSpec | None:
    """The probe as a non-critical child, or None when ``PDS_HEALTH_INTERVAL_SECONDS`` is 0."""
    if interval <= 0:
        return None
    probe = PdsHealthProbe(pds_url, interval=interval, timeout=timeout, metrics=metrics)
    return ChildSpec("pds-health", probe.run, critical=False, details=probe.details)
