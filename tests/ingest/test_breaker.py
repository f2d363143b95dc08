from __future__ import annotations

import pytest
import trio

from coves.breaker import BreakerState, CircuitBreaker


def _trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        assert breaker.allow()
        breaker.record_failure()


async def test_stays_closed_below_threshold(autojump_clock: trio.testing.MockClock) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10.0)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    # the streak restarted: two more failures still do not open it
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


async def test_opens_after_threshold_and_refuses_during_cooldown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=10.0)
    _trip(breaker)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(10.0)
    await trio.sleep(9.0)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(1.0)


async def test_half_open_lets_one_probe_and_closes_on_success(
    autojump_clock: trio.testing.MockClock,
) -> None:
    changes: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        threshold=2, cooldown=5.0, on_change=lambda a, b: changes.append((a, b))
    )
    _trip(breaker)
    await trio.sleep(5.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


async def test_failed_probe_reopens_for_a_full_cooldown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=5.0)
    _trip(breaker)
    await trio.sleep(5.0)
    assert breaker.allow()
    breaker.record_failure()  # a single failure in half-open reopens
    assert breaker.state is BreakerState.OPEN
    assert breaker.times_opened == 2
    assert breaker.retry_after() == pytest.approx(5.0)


async def test_wait_until_allowed_sleeps_through_cooldown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=30.0)
    breaker.record_failure()
    start = trio.current_time()
    with trio.fail_after(60):
        await breaker.wait_until_allowed()
    assert trio.current_time() - start == pytest.approx(30.0)
    assert breaker.state is BreakerState.HALF_OPEN


async def test_wait_until_allowed_waits_for_the_probe_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=1.0)
    breaker.record_failure()
    await trio.sleep(1.0)
    assert breaker.allow()  # probe taken by someone else
    with trio.move_on_after(10.0) as scope:
        await breaker.wait_until_allowed()
    assert scope.cancelled_caught


def test_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown=-1.0)
