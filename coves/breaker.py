"""A circuit breaker on Trio's clock, for anything that dials out and can fail.

Backoff alone keeps retrying a dead endpoint forever, just more slowly; the
breaker turns a run of consecutive failures into an explicit, observable
"open" state with a fixed cooldown, then lets exactly one probe through
(half-open) to decide between closing again and another cooldown. It is
generic: callers report outcomes, the breaker never performs the call, so
"what counts as a failure" stays with the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import trio

from coves import clock


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """closed → open after ``threshold`` consecutive failures → half-open probe
    after ``cooldown`` seconds → closed on success, open again on failure."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 60.0,
        on_change: StateListener | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.threshold = threshold
        self.cooldown = cooldown
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.times_opened = 0

    # -- inspection ---------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown has run out reads half-open."""
        if self._state is BreakerState.OPEN and self.retry_after() == 0.0:
            self._set(BreakerState.HALF_OPEN)
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until a call may be attempted (0 when one may go now)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - clock.monotonic())

    # -- gating -------------------------------------------------------------------------
    def allow(self) -> bool:
        """May a call start now? In half-open only one probe is let through at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    async def wait_until_allowed(self) -> None:
        """Sleep through the cooldown (and any probe in flight) until ``allow()`` says yes."""
        while not self.allow():
            await trio.sleep(self.retry_after() or 0.05)

    # -- outcomes -----------------------------------------------------------------------
    def release(self) -> None:
        """The allowed call was abandoned before it said anything about the endpoint."""
        self._probe_in_flight = False

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.threshold
        ):
            self._open()

    def _open(self) -> None:
        self._opened_at = clock.monotonic()
        self.times_opened += 1
        self._set(BreakerState.OPEN)

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if old is not new and self._on_change is not None:
            self._on_change(old, new)
