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
is down for the requests waiting on it. The call goes through the PDS client
(``coves.pds``) like every other PDS call, with a pool of its own that makes
one attempt per check: a retry would hide the failure being measured.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from coves import clock
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.pds import PdsConnections, PdsError, PdsLimits
from coves.pds.errors import PdsBadResponse
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)

RESULTS = ("ok", "timeout", "unreachable", "bad_status", "bad_body")
CHECK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PdsHealthProbe:
    def __init__(
        self,
        pds_url: str,
        *,
        interval: float,
        timeout: float,
        metrics: Metrics,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = pds_url.rstrip("/") + "/xrpc/_health"
        self.interval = interval
        self.timeout = timeout
        # The client's own timeouts lie beyond the check's, so a hang is always
        # reported as one ("timeout"), whichever layer would notice it first.
        limits = PdsLimits(
            connect_timeout=timeout + 1, read_timeout=timeout + 1, deadline=timeout + 2, attempts=1
        )
        self._connections = PdsConnections(metrics=metrics, limits=limits, transport=transport)
        self._client = self._connections.client(pds_url)
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
        try:
            task_status.started()
            while True:
                await self.check()
                await trio.sleep(self.interval)
        finally:
            with trio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        await self._connections.aclose()

    async def check(self) -> bool:
        started = clock.monotonic()
        result, error, version = "ok", None, None
        with trio.move_on_after(self.timeout) as scope:
            try:
                version = (await self._client.health()).get("version")
            except PdsBadResponse as exc:
                result, error = "bad_body", exc.message
            except PdsError as exc:
                if exc.pds_status is not None:  # it answered, with a failure status
                    result, error = "bad_status", f"HTTP {exc.pds_status}"
                else:  # no answer: refused, reset, unresolvable
                    result, error = "unreachable", exc.message
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
