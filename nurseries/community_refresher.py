"""The community token refresher: keeps every hosted community's PDS session fresh.

Access tokens last about 2 hours; a write whose token expired renews it first
(``coves.hosting.sessions``), but a thousand communities renewing lazily at the
busiest moment is the wrong time. This child renews them ahead, quietly:

- **Scheduled ahead, with jitter, spread**: every ``poll_interval`` it asks which
  active communities expire within ``ahead`` (30 min by default) and gives each
  a random moment in the first half of what is left (never later than
  ``safety`` before expiry), so communities created together do not renew
  together; a token bucket (``rate`` per second) and ``concurrency`` bound the
  load on the PDS.
- **Backoff and a breaker while the PDS is down**: a failed renewal is retried
  after an exponential backoff with jitter; consecutive PDS outages open the
  circuit breaker, which holds every renewal until one probe succeeds.
- **Locked-out communities** (neither refresh token nor password works) are not
  retried here; they are reported in ``_health`` and ``/metrics`` until an
  operator fixes them (``coves communities refresh NAME`` after a reset).
- **Unfinished creates** (a crash mid-provisioning) are resumed on each poll.

Everything runs on Trio's clock; the database is reached only through the
:class:`RefreshSource` (``coves.hosting.CommunityHosting`` in production, a fake
in the MockClock tests).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import trio

from coves import clock
from coves.breaker import CircuitBreaker
from coves.errors import XRPCError
from coves.hosting.service import Expiring
from coves.hosting.sessions import LockedOut
from coves.identity.ratelimit import TokenBucket
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.pds.errors import PdsUnavailable
from nurseries.backoff import ExponentialBackoff
from nurseries.supervisor import ChildSpec, RestartPolicy

log = get_logger(__name__)


class RefreshSource(Protocol):
    """What the refresher needs from the hosting side (all database access is here)."""

    async def expiring(self, before: datetime, limit: int) -> list[Expiring]: ...

    async def refresh(self, name: str) -> None:
        """Renew ``name``'s session; raises PdsUnavailable, LockedOut or another XRPCError."""
        ...

    async def reconcile(self) -> int:
        """Resume interrupted creates; returns how many finished."""
        ...


@dataclass
class CommunityState:
    """What ``_health`` and ``/metrics`` show per community."""

    due: float | None = None  # coves.clock.monotonic() of the planned renewal
    running: bool = False  # a renewal is in flight
    failures: int = 0
    locked_out: bool = False
    last_error: str | None = None
    renewed: int = 0
    backoff: ExponentialBackoff | None = field(default=None, repr=False)


class TokenRefresher:
    def __init__(
        self,
        source: RefreshSource,
        *,
        metrics: Metrics,
        ahead: float = 1800.0,
        safety: float = 300.0,
        poll_interval: float = 60.0,
        batch: int = 500,
        concurrency: int = 4,
        rate: float = 2.0,
        breaker: CircuitBreaker | None = None,
        retry_base: float = 30.0,
        retry_cap: float = 900.0,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.ahead = ahead
        self.safety = min(safety, ahead / 2)
        self.poll_interval = poll_interval
        self.batch = batch
        self.rng = rng or random.Random()
        self.breaker = breaker or CircuitBreaker(threshold=3, cooldown=60.0)
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.states: dict[str, CommunityState] = {}
        self._heap: list[tuple[float, str]] = []
        self._wake = trio.Event()
        self._limit = trio.CapacityLimiter(concurrency)
        self._bucket = TokenBucket(rate, max(1, int(rate)))
        self.polls = 0
        self._renewals = metrics.counter(
            "coves_community_refresher_renewals_total",
            "renewals the refresher attempted, by outcome",
            ["outcome"],
        )
        metrics.add_callback("coves_community_refresher", self._collect)

    # ---- planning (pure, on Trio's clock) ------------------------------------------------

    def plan(self, expires_at: datetime | None, now_wall: datetime) -> float:
        """Seconds from now until the renewal of a token expiring at ``expires_at``."""
        if expires_at is None:
            return self.rng.uniform(0.0, min(5.0, self.poll_interval))
        left = (expires_at - now_wall).total_seconds()
        latest = left - self.safety  # renew no later than this
        if latest <= 0:
            return self.rng.uniform(0.0, min(5.0, self.poll_interval))
        # Spread over the first half of what is left before the safety margin.
        return self.rng.uniform(0.0, min(latest, max(latest / 2, 0.0)))

    def schedule(self, name: str, delay: float) -> None:
        state = self.states.setdefault(name, CommunityState())
        state.due = clock.monotonic() + delay
        heapq.heappush(self._heap, (state.due, name))
        self._wake.set()

    def take(self, items: list[Expiring], now_wall: datetime) -> int:
        """Plan renewals for what the poll found; returns how many were newly planned."""
        planned = 0
        for item in items:
            state = self.states.setdefault(item.name, CommunityState())
            state.locked_out = item.locked_out
            if item.locked_out or state.due is not None or state.running:
                continue  # reported, not retried; or already planned or under way
            self.schedule(item.name, self.plan(item.expires_at, now_wall))
            planned += 1
        return planned

    # ---- running --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._dispatch, nursery)
            task_status.started(self)
            while True:
                await self.poll()
                await trio.sleep(self.rng.uniform(0.8, 1.2) * self.poll_interval)

    async def poll(self) -> None:
        self.polls += 1
        now_wall = clock.utcnow()
        try:
            items = await self.source.expiring(
                now_wall + timedelta(seconds=self.ahead), limit=self.batch
            )
            self.take(items, now_wall)
            await self.source.reconcile()
        except Exception as exc:  # the database being down must not kill the child
            log.warning("community refresher poll failed", error=repr(exc)[:200])

    async def _dispatch(self, nursery: trio.Nursery) -> None:
        while True:
            if not self._heap:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            due, name = self._heap[0]
            state = self.states.get(name)
            if state is None or state.due != due:
                heapq.heappop(self._heap)  # superseded entry
                continue
            wait = due - clock.monotonic()
            if wait > 0:
                self._wake = trio.Event()
                with trio.move_on_after(wait):
                    await self._wake.wait()
                continue
            heapq.heappop(self._heap)
            state.due = None
            state.running = True
            # A free slot first, then the breaker: a renewal never starts on a breaker
            # that opened while it waited for the slot.
            await self._limit.acquire_on_behalf_of(name)
            await self.breaker.wait_until_allowed()
            await self._bucket.acquire()
            nursery.start_soon(self._renew, name, state)

    async def _renew(self, name: str, state: CommunityState) -> None:
        try:
            await self.source.refresh(name)
        except PdsUnavailable as exc:
            self.breaker.record_failure()
            self._failed(name, state, "unavailable", exc.message)
        except LockedOut:
            self.breaker.record_success()  # the PDS answered: it is up
            state.locked_out = True
            state.failures += 1
            state.last_error = "locked out"
            self._renewals.labels("locked_out").inc()
        except XRPCError as exc:
            if exc.status >= 500:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            self._failed(name, state, "error", f"{exc.error}: {exc.message}")
        except Exception as exc:  # a bug or the database: retried, never fatal to the child
            self.breaker.release()
            self._failed(name, state, "error", repr(exc)[:200])
        else:
            self.breaker.record_success()
            state.failures = 0
            state.last_error = None
            state.backoff = None
            state.renewed += 1
            self._renewals.labels("renewed").inc()
        finally:
            state.running = False
            self._limit.release_on_behalf_of(name)

    def _failed(self, name: str, state: CommunityState, outcome: str, error: str) -> None:
        self._renewals.labels(outcome).inc()
        state.failures += 1
        state.last_error = error[:200]
        if state.backoff is None:
            state.backoff = ExponentialBackoff(
                base=self.retry_base, cap=self.retry_cap, jitter="equal", rng=self.rng
            )
        delay = state.backoff.next_delay()
        log.info("community session renewal failed; retrying", community=name, delay=delay)
        self.schedule(name, delay)

    # ---- reporting ----------------------------------------------------------------------------

    def details(self) -> dict[str, Any]:
        """For ``_health``: totals, the next renewal, and every community in trouble."""
        now = clock.monotonic()
        planned = [s.due for s in self.states.values() if s.due is not None]
        troubled = {
            name: _state_view(state, now)
            for name, state in sorted(self.states.items())
            if state.failures or state.locked_out
        }
        return {
            "breaker": self.breaker.state.value,
            "breaker_retry_after": round(self.breaker.retry_after(), 1),
            "tracked": len(self.states),
            "planned": len(planned),
            "next_renewal_in": round(min(planned) - now, 1) if planned else None,
            "locked_out": sorted(n for n, s in self.states.items() if s.locked_out),
            "failing": dict(list(troubled.items())[:50]),
        }

    def _collect(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            now: float | None = clock.monotonic()
        except RuntimeError:  # collected outside Trio (the registry describes on register)
            now = None
        planned = GaugeMetricFamily(
            "coves_community_refresher_planned", "community renewals planned"
        )
        planned.add_metric([], sum(1 for s in self.states.values() if s.due is not None))
        locked = GaugeMetricFamily(
            "coves_community_locked_out", "communities whose session cannot be renewed"
        )
        locked.add_metric([], sum(1 for s in self.states.values() if s.locked_out))
        breaker = GaugeMetricFamily(
            "coves_community_refresher_breaker_open", "1 while the PDS breaker is open"
        )
        breaker.add_metric([], 0.0 if self.breaker.state.value == "closed" else 1.0)
        failures = GaugeMetricFamily(
            "coves_community_token_failures",
            "consecutive renewal failures of a community (only those with failures)",
            labels=["community"],
        )
        due = GaugeMetricFamily(
            "coves_community_token_next_renewal_seconds",
            "seconds until a community's planned renewal (only those with failures)",
            labels=["community"],
        )
        for name, state in self.states.items():
            if state.failures or state.locked_out:
                failures.add_metric([name], float(state.failures))
                if state.due is not None and now is not None:
                    due.add_metric([name], max(0.0, state.due - now))
        return [planned, locked, breaker, failures, due]


def _state_view(state: CommunityState, now: float) -> Mapping[str, Any]:
    return {
        "failures": state.failures,
        "locked_out": state.locked_out,
        "last_error": state.last_error,
        "next_attempt_in": round(state.due - now, 1) if state.due is not None else None,
    }


def community_refresher_child(
    source: RefreshSource, *, metrics: Metrics, ahead: float, enabled: bool
) -> ChildSpec | None:
    """The refresher as a supervised child (None when COMMUNITY_REFRESH_ENABLED is off)."""
    if not enabled:
        return None
    refresher = TokenRefresher(source, metrics=metrics, ahead=ahead)
    return ChildSpec(
        "community_refresher",
        refresher.run,
        RestartPolicy(max_failures=10, failure_window=600.0),
        critical=False,  # reads go on without it; writes renew sessions themselves
        details=refresher.details,
    )
