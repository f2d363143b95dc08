"""Admission control: shed what cannot be served in time instead of queueing it forever.

Past capacity, a server that accepts everything queues everything: every
request waits behind every other (in the event loop, at the database pool)
and latency grows without bound while nothing is refused. Here at most
``max_concurrency`` XRPC requests run at once per process; the rest wait in
a FIFO queue for at most ``queue_timeout`` seconds. A request that cannot
be served in time is refused at once with 503 and ``Retry-After``:

- when the event loop runs late (``loop_lag``, below);
- when it has already spent the queue timeout between arriving and reaching
  the dispatcher (``late``, below);
- when ``max_queue`` requests are already waiting (``queue_full``);
- when the queue ahead of it would take longer than what is left of
  ``queue_timeout`` to drain at the rate requests have been completing
  (``expected_wait``): the caller learns now rather than after waiting for
  nothing;
- when it has waited out the rest of ``queue_timeout`` without getting a
  slot (``timeout``).

So the latency of admitted requests is bounded by the queue timeout plus
the service time at ``max_concurrency``, whatever the offered load, and
shed requests cost a few microseconds instead of a full request. Operational
routes (``_health``, ``/metrics``) never pass through here.

The completion rate is an exponentially weighted average of the interval
between completions while requests were queued (an idle spell says nothing
about capacity), on Trio's clock (``coves.clock``), so MockClock tests
drive every decision deterministically.

**What the slot queue cannot see.** On one core the slot queue is not where
an overloaded worker's requests wait longest. Before a request reaches the
dispatcher it sits in socket buffers, in h11's parser and in Trio's run
queue, behind every other runnable task; a core that parses 1 000 requests
a second only to refuse most of them keeps that run queue long, and every
await of every admitted request (each database call is one) waits its turn
in it again. None of that is time "waiting for a slot". Two signals cover
it:

- *Event-loop lag* (:class:`LoopLag`): a task sleeps ``interval`` (25 ms)
  and measures how late it wakes. In Trio a woken task runs after the whole
  batch of tasks runnable before it, so the lateness is what any await costs
  right now. The signal is the larger of a smoothed average of those
  samples and how overdue the monitor's current wake-up already is: a loop
  blocked for two seconds is known to be late at the first request served
  after it, before the monitor itself gets to run.
- *Arrival time*: the server stamps each request when Hypercorn hands it to
  the application (``nurseries.xrpc_server``, where it is parsed; the start
  of the ASGI call otherwise), and that time counts against the queue
  budget: a request that already waited ``queue_timeout`` in the loop is
  refused (``late``) rather than served late, and one that waited part of it
  may queue only for the rest.

**Shedding on lag: probabilistic, proportional.** Below ``max_loop_lag``
nothing is shed for lag; above it a new request is refused with probability
``(lag - max_loop_lag) / max_loop_lag``, so everything is refused at twice
the target. Refusing everything as soon as a threshold is crossed (or until
the lag falls below a lower one: hysteresis) makes the loop swing between
refusing all and admitting a burst that pushes it back over, and served
throughput drops to the troughs; a refusal probability that rises with the
excess is a proportional controller instead: under a steady overload the
lag settles where the admitted rate matches what the core serves, between
the target and twice it, and served throughput stays near capacity. This is
CoDel's idea applied to the loop (act on how long work sits in the queue,
not on how long the queue is), and PIE's way of acting (a drop probability
rather than a drop state), without PIE's integral term: its tuning would
need measurements we do not have, and the bounded error of a proportional
controller (at most the target again) is what the latency budget can
afford. The smoothing (weight ``1/4`` per sample, about 100 ms) keeps one
late wake-up (a GC pause) from refusing what arrives after it; the overdue
term refuses, during a stall or right after it until the monitor has run,
what was caught in it. The decision costs a clock read and, over the target,
one random draw; it is taken before a request costs a slot, a handler or the
database.

**Why a 50 ms target** (``ADMISSION_MAX_LOOP_LAG_MS``). A request crosses
the loop several times (its socket read, its own task's start, each
database call, its response), and each crossing costs about the lag. In the
model in tests/foundation/test_admission.py (a loop at twice its capacity,
six crossings per request) admitted requests are served at a p99 of about
12 times the target: about 0.6 s at 50 ms, within the 1 s issue 19 asks for
at twice capacity, where 100 ms gives about 1.1 s. A model, not a
measurement: the lead's benchmark decides. A healthy loop at capacity lags
far less (32 requests' steps of about half a millisecond make batches of
15-20 ms), and a lone GC pause counts a quarter; if ``loop_lag`` refusals
appear below the knee, the target is under the loop's ordinary lateness
there and should be raised.

**Why ``max_concurrency`` stays at 32 by default.** On one core, requests
running at once share it: 32 interleaved requests of about 2.6 ms of CPU
each take about 32 times as long each as one alone, which is why admitted
latency grew with load past the knee. A lower limit would not serve more
(the core is as busy either way) but would keep more of the wait in the
FIFO queue, where the queue timeout and ``expected_wait`` see and bound it,
and less in the event loop, where only the lag signal does. Against that,
requests that wait on something other than the core (a user's PDS for
writes, a saturated database pool, a slow identity lookup) need slots to
wait in, or a few slow PDS calls would hold every slot. With the lag signal
the interleaving is no longer invisible (it shows up as loop lag), so the
default is left as it is until the lead's benchmark compares it with 8 and
16 on a one-core worker (``ADMISSION_MAX_CONCURRENCY``).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from coves.clock import monotonic

LOOP_LAG = "loop_lag"
LATE = "late"
QUEUE_FULL = "queue_full"
EXPECTED_WAIT = "expected_wait"
TIMEOUT = "timeout"
REASONS = (LOOP_LAG, LATE, QUEUE_FULL, EXPECTED_WAIT, TIMEOUT)

# Where the server puts the time (``coves.clock``) a request reached the
# application, in the ASGI scope's ``extensions`` (nurseries/xrpc_server.py).
ARRIVED = "coves.arrived"

# Weight of the newest completion interval in the running average.
_ALPHA = 0.05
# How often the loop-lag monitor wakes, and the weight of its newest sample.
LAG_INTERVAL = 0.025
_LAG_WEIGHT = 0.25


class Overloaded(Exception):
    """The request was not admitted; ``reason`` says why (a metric label)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoopLag:
    """How late this process's event loop runs (see the module docstring).

    ``run`` is the monitor task, one per process, started next to the server
    (``nurseries.xrpc_server.XRPCServer``). While it is not running nothing is
    known and :meth:`current` is 0: nothing is shed for lag.
    """

    def __init__(
        self,
        interval: float = LAG_INTERVAL,
        *,
        observe: Callable[[float], object] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("the loop-lag interval must be positive")
        self.interval = interval
        self.smoothed = 0.0  # seconds, exponentially weighted over samples
        self.last = 0.0  # the latest sample
        self.samples = 0
        self._observe = observe
        self._due: float | None = None  # when the monitor should next wake

    def current(self) -> float:
        """Seconds late now: the smoothed lag, or more if the monitor is already
        that overdue (the loop is stalled and it has not run yet to say so)."""
        due = self._due
        if due is None:
            return self.smoothed
        overdue = monotonic() - due
        return overdue if overdue > self.smoothed else self.smoothed

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                due = monotonic() + self.interval
                self._due = due
                await trio.sleep_until(due)
                self.sample(max(0.0, monotonic() - due))
        finally:
            # Stopped: what it measured no longer says anything about the loop.
            self._due = None
            self.smoothed = 0.0

    def sample(self, lag: float) -> None:
        self.last = lag
        self.samples += 1
        self.smoothed += _LAG_WEIGHT * (lag - self.smoothed)
        if self._observe is not None:
            self._observe(lag)


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
        loop_lag: LoopLag | None = None,
        max_loop_lag: float = 0.0,
        clock: Callable[[], float] = monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.max_queue = max(0, max_queue)
        self.queue_timeout = queue_timeout
        self.loop_lag = loop_lag
        self.max_loop_lag = max_loop_lag  # seconds; 0: never shed for lag
        self._clock = clock
        self._draw = draw  # uniform in [0, 1): which requests a lag sheds
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

    def shed_probability(self) -> float:
        """The share of new requests refused for loop lag now: 0 up to ``max_loop_lag``,
        rising in proportion to the excess, 1 from twice it."""
        monitor, target = self.loop_lag, self.max_loop_lag
        if monitor is None or target <= 0:
            return 0.0
        excess = monitor.current() - target
        if excess <= 0:
            return 0.0
        return min(1.0, excess / target)

    async def acquire(self, arrived: float | None = None) -> float:
        """Wait for a slot; return the seconds since ``arrived`` (or since the call).

        ``arrived`` is when the request reached the server: the time since
        counts against the queue timeout. Raises :class:`Overloaded`.
        """
        shed = self.shed_probability()
        if shed > 0.0 and self._draw() < shed:
            raise Overloaded(LOOP_LAG)
        now = self._clock()
        since = now if arrived is None or arrived > now else arrived
        budget = self.queue_timeout - (now - since)
        if budget <= 0:
            raise Overloaded(LATE)
        if self.active < self.max_concurrency and self.waiting == 0:
            self.active += 1
            return now - since
        if self.waiting >= self.max_queue:
            raise Overloaded(QUEUE_FULL)
        expected = self.expected_wait(self.waiting + 1)
        if expected is not None and expected > budget:
            raise Overloaded(EXPECTED_WAIT)
        waiter = _Waiter(now)
        self._queue.append(waiter)
        self.waiting += 1
        try:
            with trio.move_on_after(budget):
                await waiter.event.wait()
        except BaseException:
            # Cancelled from outside (client gone, shutdown): give back what we hold.
            self._leave(waiter)
            raise
        if waiter.granted:
            return self._clock() - since
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
