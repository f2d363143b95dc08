"""The supervisor: one nursery that owns every long-running part of Coves.

A child is declared with a name, a start function following Trio's
``task_status`` protocol and a restart policy. A crashing child is restarted
after an exponential, jittered delay; the delay resets once the child has
been healthy for a while; a child that fails too often within a window
stops the whole process (escalation), because a restart loop that never
recovers hides an outage instead of reporting it.

Shutdown is orderly: children stop in reverse start order, each first asked
to stop gracefully (if it knows how) and cancelled after its grace period.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import trio

from coves.logs import get_logger
from coves.startup import find_refusal
from nurseries.backoff import ExponentialBackoff

log = get_logger(__name__)


class StartFn(Protocol):
    def __call__(self, *, task_status: trio.TaskStatus[Any]) -> Awaitable[None]: ...


@dataclass(frozen=True)
class RestartPolicy:
    base_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    healthy_after: float = 60.0  # uptime after which the backoff starts over
    max_failures: int = 5  # failures within the window before escalating
    failure_window: float = 300.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    start: StartFn
    policy: RestartPolicy = RestartPolicy()
    # Called (synchronously) to ask the child to wind down on its own, e.g.
    # the HTTP server stops accepting and drains in-flight requests.
    request_stop: Callable[[], None] | None = None
    grace: float = 10.0
    # A child whose failure means the process is unhealthy (503 from _health).
    critical: bool = True
    # Facts the child publishes for _health (connection state, lag, ...).
    details: Callable[[], dict[str, Any]] | None = None
    # Children started one after the other with the same group are stopped
    # together (e.g. the API worker processes drain at once, not in turn).
    group: str | None = None


class ChildStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class ChildState:
    name: str
    critical: bool
    status: ChildStatus = ChildStatus.STARTING
    restarts: int = 0
    last_error: str | None = None
    started_at: float | None = None
    # Extra facts a child publishes about itself (connection state, lag, ...).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status == ChildStatus.RUNNING

    def uptime(self, now: float) -> float | None:
        """Seconds since the current life started; None if it never started."""
        return None if self.started_at is None else now - self.started_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "restarts": self.restarts,
            "lastError": self.last_error,
            **({"details": self.details} if self.details else {}),
        }


class ChildFailedTooOften(Exception):
    def __init__(self, name: str, failures: int, window: float, last: BaseException) -> None:
        super().__init__(
            f"child {name!r} failed {failures} times within {window:.0f}s; last error: {last!r}"
        )
        self.name = name
        self.last = last


@dataclass
class _Child:
    spec: ChildSpec
    state: ChildState
    scope: trio.CancelScope
    done: trio.Event
    stopping: bool = False


RestartHook = Callable[[str], None]


class Supervisor:
    """Use :func:`open_supervisor`; ``start`` children, then ``wait``."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        rng: random.Random | None = None,
        on_restart: RestartHook | None = None,
    ) -> None:
        self._nursery = nursery
        self._rng = rng or random.Random()
        self._children: list[_Child] = []
        self._on_restart = on_restart
        self._shutdown_started = False
        self._finished = trio.Event()

    # -- public ---------------------------------------------------------------------
    @property
    def states(self) -> dict[str, ChildState]:
        return {child.spec.name: child.state for child in self._children}

    def state(self, name: str) -> ChildState:
        return self.states[name]

    @property
    def healthy(self) -> bool:
        return all(c.state.healthy for c in self._children if c.spec.critical)

    def health_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {}
        for child in self._children:
            entry = child.state.as_dict()
            if child.spec.details is not None:
                entry["details"] = child.spec.details()
            report[child.spec.name] = entry
        return report

    async def start(self, spec: ChildSpec) -> Any:
        """Start a child; return the value it passed to ``task_status.started``.

        Blocks until the child first reports started. If it keeps failing
        before that, the escalation error propagates from here.
        """
        if any(c.spec.name == spec.name for c in self._children):
            raise ValueError(f"a child named {spec.name!r} already exists")
        child = _Child(spec, ChildState(spec.name, spec.critical), trio.CancelScope(), trio.Event())
        self._children.append(child)
        return await self._nursery.start(self._supervise, child)

    async def shutdown(self) -> None:
        """Stop every child, newest first. Idempotent."""
        if self._shutdown_started:
            await self._finished.wait()
            return
        self._shutdown_started = True
        batches: list[list[_Child]] = []
        for child in reversed(self._children):
            group = child.spec.group
            if batches and group is not None and batches[-1][0].spec.group == group:
                batches[-1].append(child)
            else:
                batches.append([child])
        for batch in batches:
            if len(batch) == 1:
                await self._stop_child(batch[0])
                continue
            async with trio.open_nursery() as nursery:
                for child in batch:
                    nursery.start_soon(self._stop_child, child)
        self._finished.set()

    @property
    def shutting_down(self) -> bool:
        return self._shutdown_started

    # -- internals --------------------------------------------------------------------
    async def _stop_child(self, child: _Child) -> None:
        if child.done.is_set():
            return
        was_running = child.state.status == ChildStatus.RUNNING
        child.stopping = True
        child.state.status = ChildStatus.STOPPING
        log.info("stopping child", child=child.spec.name)
        if child.spec.request_stop is not None and was_running:
            child.spec.request_stop()
            with trio.move_on_after(child.spec.grace):
                await child.done.wait()
        child.scope.cancel()
        await child.done.wait()
        child.state.status = ChildStatus.STOPPED
        log.info("child stopped", child=child.spec.name)

    async def _supervise(self, child: _Child, *, task_status: trio.TaskStatus[Any]) -> None:
        spec, state = child.spec, child.state
        backoff = ExponentialBackoff(
            base=spec.policy.base_delay,
            cap=spec.policy.max_delay,
            multiplier=spec.policy.multiplier,
            jitter="equal",
            rng=self._rng,
        )
        failures: deque[float] = deque()
        first_start: trio.TaskStatus[Any] | None = task_status
        try:
            with child.scope:
                while True:
                    state.status = ChildStatus.STARTING
                    state.started_at = None
                    error: BaseException
                    try:
                        await self._run_once(child, first_start)
                        error = RuntimeError("child returned")
                        if child.stopping:
                            return
                    except BaseException as exc:
                        if _is_cancellation(exc) or child.stopping:
                            raise
                        refusal = find_refusal(exc)
                        if refusal is not None:  # retrying cannot help: stop Coves now
                            state.status = ChildStatus.FAILED
                            state.last_error = str(refusal)
                            raise refusal from None
                        error = _unwrap(exc)
                    now = trio.current_time()
                    uptime = state.uptime(now)
                    if uptime is not None:
                        first_start = None
                        if uptime >= spec.policy.healthy_after:
                            backoff.reset()
                    failures.append(now)
                    while failures and now - failures[0] > spec.policy.failure_window:
                        failures.popleft()
                    state.last_error = repr(error)
                    if len(failures) > spec.policy.max_failures:
                        state.status = ChildStatus.FAILED
                        log.critical(
                            "child failed too often; stopping Coves",
                            child=spec.name,
                            failures=len(failures),
                            window_s=spec.policy.failure_window,
                            error=repr(error),
                        )
                        raise ChildFailedTooOften(
                            spec.name, len(failures), spec.policy.failure_window, error
                        )
                    delay = backoff.next_delay()
                    state.status = ChildStatus.BACKOFF
                    log.error(
                        "child crashed; restarting",
                        child=spec.name,
                        error=repr(error),
                        delay_s=round(delay, 3),
                        exc_info=error,
                    )
                    await trio.sleep(delay)
                    state.restarts += 1
                    if self._on_restart is not None:
                        self._on_restart(spec.name)
        finally:
            if state.status not in (ChildStatus.FAILED,):
                state.status = ChildStatus.STOPPED
            child.done.set()

    async def _run_once(self, child: _Child, first_start: trio.TaskStatus[Any] | None) -> None:
        """One life of a child: start it, report the first start, wait for it to end."""
        async with trio.open_nursery() as inner:
            value = await inner.start(_call_start, child.spec.start)
            child.state.started_at = trio.current_time()
            child.state.status = ChildStatus.RUNNING
            if first_start is not None:
                first_start.started(value)


async def _call_start(start: StartFn, *, task_status: trio.TaskStatus[Any]) -> None:
    await start(task_status=task_status)


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled | KeyboardInterrupt):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_cancellation(e) for e in exc.exceptions)
    return False


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def open_supervisor(
    *, rng: random.Random | None = None, on_restart: RestartHook | None = None
) -> AsyncIterator[Supervisor]:
    """Open the root nursery. Leaving the block shuts every child down in order."""
    async with trio.open_nursery() as nursery:
        supervisor = Supervisor(nursery, rng=rng, on_restart=on_restart)
        try:
            yield supervisor
        finally:
            with trio.CancelScope(shield=True):
                await supervisor.shutdown()
