"""Supervisor behaviour under MockClock: restarts, backoff, escalation, shutdown."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
import trio.testing

from nurseries.backoff import ExponentialBackoff
from nurseries.supervisor import (
    ChildFailedTooOften,
    ChildSpec,
    ChildStatus,
    RestartPolicy,
    open_supervisor,
)


class Crasher:
    """A child that starts, runs ``lifetime`` seconds, then raises; records start times."""

    def __init__(self, lifetime: float = 0.0, crashes: int | None = None) -> None:
        self.lifetime = lifetime
        self.crashes = crashes  # None = forever
        self.starts: list[float] = []

    async def __call__(self, *, task_status: trio.TaskStatus[Any]) -> None:
        self.starts.append(trio.current_time())
        task_status.started(len(self.starts))
        await trio.sleep(self.lifetime)
        if self.crashes is None or len(self.starts) <= self.crashes:
            raise RuntimeError(f"boom {len(self.starts)}")
        await trio.sleep_forever()


def gaps(starts: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(starts)]


async def test_restart_after_crash(autojump_clock: trio.testing.MockClock) -> None:
    child = Crasher(lifetime=1.0, crashes=2)
    restarts: list[str] = []
    policy = RestartPolicy(base_delay=1.0, max_delay=10.0, max_failures=10)
    async with open_supervisor(rng=random.Random(1), on_restart=restarts.append) as sup:
        value = await sup.start(ChildSpec("crasher", child, policy))
        assert value == 1
        await trio.sleep(60)
        state = sup.state("crasher")
        assert state.status == ChildStatus.RUNNING
        assert state.restarts == 2
        assert "boom 2" in (state.last_error or "")
        assert sup.healthy
    assert len(child.starts) == 3
    assert restarts == ["crasher", "crasher"]


async def test_backoff_grows_and_is_capped(autojump_clock: trio.testing.MockClock) -> None:
    child = Crasher(lifetime=0.0)
    policy = RestartPolicy(
        base_delay=1.0, max_delay=8.0, max_failures=1000, failure_window=10.0, healthy_after=1e9
    )
    async with open_supervisor(rng=random.Random(7)) as sup:
        await sup.start(ChildSpec("crasher", child, policy))
        await trio.sleep(200)
        assert sup.state("crasher").status in (ChildStatus.BACKOFF, ChildStatus.STARTING)
        assert not sup.healthy
    delays = gaps(child.starts)
    assert len(delays) > 10
    # Equal jitter: delay n lies in [ceiling/2, ceiling], ceiling = min(cap, base*2^n).
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 1.0 * 2**n)
        assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9, (n, delay)
    assert max(delays) <= 8.0 + 1e-9
    assert max(delays[5:]) > 4.0  # it really reaches the cap region


async def test_backoff_resets_after_healthy_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Pattern:
        """Crash fast 4 times, then live 100 s and crash, then crash fast again."""

        def __init__(self) -> None:
            self.starts: list[float] = []

        async def __call__(self, *, task_status: trio.TaskStatus[Any]) -> None:
            self.starts.append(trio.current_time())
            task_status.started()
            if len(self.starts) == 5:
                await trio.sleep(100)
            raise RuntimeError("boom")

    child = Pattern()
    policy = RestartPolicy(
        base_delay=1.0, max_delay=60.0, healthy_after=50.0, max_failures=100, failure_window=1.0
    )
    async with open_supervisor(rng=random.Random(3)) as sup:
        await sup.start(ChildSpec("p", child, policy))
        while len(child.starts) < 7:
            await trio.sleep(1)
    delays = gaps(child.starts)
    # delays[3] is the 4th backoff (ceiling 8); after the 100 s life the backoff
    # restarts from base: the gap after it is 100 s of life plus a delay <= 1 s.
    assert 4.0 <= delays[3] <= 8.0
    assert 100.0 <= delays[4] <= 101.0
    assert delays[5] <= 2.0


async def test_escalates_after_too_many_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Crasher(lifetime=0.5)
    policy = RestartPolicy(base_delay=0.1, max_delay=0.2, max_failures=3, failure_window=60.0)
    with pytest.raises(BaseExceptionGroup) as info:
        async with open_supervisor() as sup:
            await sup.start(ChildSpec("flaky", child, policy))
            await trio.sleep(1000)
    escalations = info.value.subgroup(ChildFailedTooOften)
    assert escalations is not None
    error = escalations.exceptions[0]
    assert isinstance(error, ChildFailedTooOften)
    assert error.name == "flaky"
    assert "flaky" in str(error) and "4 times" in str(error)
    assert len(child.starts) == 4


async def test_failures_outside_window_do_not_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = Crasher(lifetime=30.0)  # one crash per ~30 s, window of 20 s
    policy = RestartPolicy(base_delay=0.1, max_delay=0.2, max_failures=1, failure_window=20.0)
    async with open_supervisor() as sup:
        await sup.start(ChildSpec("slow", child, policy))
        await trio.sleep(300)
        assert sup.state("slow").restarts >= 9
    assert len(child.starts) >= 10


async def test_start_propagates_failure_when_child_never_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def never(*, task_status: trio.TaskStatus[Any]) -> None:
        raise OSError("port in use")

    policy = RestartPolicy(base_delay=0.1, max_delay=0.1, max_failures=2)
    with pytest.raises(BaseExceptionGroup) as info:
        async with open_supervisor() as sup:
            await sup.start(ChildSpec("never", never, policy))
    assert info.value.subgroup(ChildFailedTooOften) is not None


async def test_orderly_shutdown_reverse_order_graceful_then_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    events: list[str] = []

    def make(name: str, graceful: bool) -> tuple[Any, Any]:
        stop = trio.Event()

        async def run(*, task_status: trio.TaskStatus[Any]) -> None:
            task_status.started()
            try:
                if graceful:
                    await stop.wait()
                    events.append(f"{name}:drained")
                else:
                    await trio.sleep_forever()
            except trio.Cancelled:
                events.append(f"{name}:cancelled")
                raise

        def request_stop() -> None:
            events.append(f"{name}:asked")
            if graceful:
                stop.set()

        return run, request_stop

    started_at = trio.current_time()
    async with open_supervisor() as sup:
        for name, graceful in (("db", True), ("worker", False), ("http", True)):
            run, request_stop = make(name, graceful)
            await sup.start(ChildSpec(name, run, request_stop=request_stop, grace=5.0))
        assert set(sup.health_report()) == {"db", "worker", "http"}
    assert events == [
        "http:asked",
        "http:drained",
        "worker:asked",
        "worker:cancelled",
        "db:asked",
        "db:drained",
    ]
    # The stubborn worker got exactly its grace period before being cancelled.
    assert trio.current_time() - started_at == pytest.approx(5.0)
    assert all(s.status == ChildStatus.STOPPED for s in sup.states.values())


async def test_duplicate_child_name_refused() -> None:
    async def run(*, task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        await trio.sleep_forever()

    async with open_supervisor() as sup:
        await sup.start(ChildSpec("a", run))
        with pytest.raises(ValueError, match="already exists"):
            await sup.start(ChildSpec("a", run))


async def test_health_report_includes_details_and_noncritical_children() -> None:
    async def run(*, task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def broken(*, task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        raise RuntimeError("nope")

    policy = RestartPolicy(base_delay=100, max_delay=100)
    async with open_supervisor() as sup:
        await sup.start(ChildSpec("a", run, details=lambda: {"lag": 3}))
        await sup.start(ChildSpec("optional", broken, policy, critical=False))
        await trio.sleep(0.05)
        report = sup.health_report()
        assert report["a"]["details"] == {"lag": 3}
        assert report["optional"]["status"] == "backoff"
        assert sup.healthy  # a non-critical child does not make the process unhealthy


def test_exponential_backoff_jitter_bounds() -> None:
    rng = random.Random(11)
    full = ExponentialBackoff(base=1.0, cap=60.0, jitter="full", rng=rng)
    samples = [full.next_delay() for _ in range(12)]
    for n, delay in enumerate(samples):
        assert 0.0 <= delay <= min(60.0, 2.0**n)
    none = ExponentialBackoff(base=1.0, cap=10.0, jitter="none", rng=rng)
    assert [none.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    none.reset()
    assert none.next_delay() == 1.0
