"""Admission control: shed what cannot be served in time instead of queueing it forever.

Past capacity, a server that accepts everything queues everything: every
request waits behind every other (in the event loop, at the database pool)
and latency grows without bound while nothing is refused. Here at most
``max_concurrency`` XRPC requests run at once per process; the rest wait in
a FIFO queue for at most ``queue_timeout`` seconds. A request that cannot
be served in time is refused at once with 503 and ``Retry-After``:

- when ``max_queue`` requests are already waiting (``queue_full``);
- when the queue ahead of it would take longer than ``queue_timeout`` to
  drain at the rate requests have been completing (``expected_wait``): the
  caller learns now rather than after waiting for nothing;
- when it has waited ``queue_timeout`` without getting a slot (``timeout``).

So the latency of admitted requests is bounded by the queue timeout plus
the service time at ``max_concurrency``, whatever the offered load, and
shed requests cost a few microseconds instead of a full request. Operational
routes (``_health``, ``/metrics``) never pass through here.

The completion rate is an exponentially weighted average of the interval
between completions while requests were queued (an idle spell says nothing
about capacity), on Trio's clock (``coves.clock``), so MockClock tests
drive every decision deterministically.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from coves.clock import monotonic

QUEUE_FULL = "queue_full"
EXPECTED_WAIT = "expected_wait"
TIMEOUT = "timeout"

# Weight of the newest completion interval in the running average.
_ALPHA = 0.05


class Overloaded(Exception):
    """The request was not admitted; ``reason`` says why (a metric label)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Waiter:
    since: float
    event: trio.Event = field(default_factory=trio.Event)
    granted: bool = False
    abandoned: bool = False


class AdmissionControl:
    def __init__(
        self,
        max_concurrency: int,
        *,
        max_queue: int = 512,
        queue_timeout: float = 0.5,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.max_queue = max(0, max_queue)
        self.queue_timeout = queue_timeout
        self._clock = clock
        self.active = 0
        self.waiting = 0
        self._queue: deque[_Waiter] = deque()
        self._last_busy: float | None = None  # last completion that had a queue behind it
        self._interval: float | None = None  # average seconds between such completions

    def expected_wait(self, position: int) -> float | None:
        """Seconds until ``position`` requests ahead would be through, at the recent rate."""
        if self._interval is None:
            return None
        return position * self._interval

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds waited. Raises :class:`Overloaded`."""
        if self.active < self.max_concurrency and self.waiting == 0:
            self.active += 1
            return 0.0
        if self.waiting >= self.max_queue:
            raise Overloaded(QUEUE_FULL)
        expected = self.expected_wait(self.waiting + 1)
        if expected is not None and expected > self.queue_timeout:
            raise Overloaded(EXPECTED_WAIT)
        now = self._clock()
        waiter = _Waiter(now)
        self._queue.append(waiter)
        self.waiting += 1
        try:
            with trio.move_on_after(self.queue_timeout):
                await waiter.event.wait()
        except BaseException:
            # Cancelled from outside (client gone, shutdown): give back what we hold.
            self._leave(waiter)
            raise
        if waiter.granted:
            return self._clock() - now
        self._leave(waiter)
        raise Overloaded(TIMEOUT)

    def _leave(self, waiter: _Waiter) -> None:
        if waiter.granted:
            self.release()
        elif not waiter.abandoned:
            waiter.abandoned = True
            self.waiting -= 1

    def release(self) -> None:
        """A request finished: hand its slot to the oldest waiter, or free it."""
        while self._queue:
            waiter = self._queue.popleft()
            if waiter.abandoned:
                continue
            self._completed_while_busy()
            waiter.granted = True
            self.waiting -= 1
            waiter.event.set()
            return  # the slot passes on: ``active`` is unchanged
        # Nobody waits: the interval to the next completion says nothing about capacity.
        self._last_busy = None
        self.active -= 1

    def _completed_while_busy(self) -> None:
        """Learn the completion rate from completions that had a queue behind them."""
        now = self._clock()
        if self._last_busy is not None:
            gap = now - self._last_busy
            self._interval = gap if self._interval is None else (
                _ALPHA * gap + (1 - _ALPHA) * self._interval
            )  # fmt: skip
        self._last_busy = now

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[float]:
        waited = await self.acquire()
        try:
            yield waited
        finally:
            self.release()
