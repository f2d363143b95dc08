"""The refresher's schedule, spreading, backoff and breaker, on MockClock (no database)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import trio

from coves import clock
from coves.breaker import CircuitBreaker
from coves.hosting.service import Expiring
from coves.hosting.sessions import LockedOut
from coves.metrics import Metrics
from coves.pds.errors import PdsUnavailable
from nurseries.community_refresher import TokenRefresher

TOKEN_LIFETIME = timedelta(hours=2)


class FakeSource:
    """Communities in memory; renewals move their expiry two hours ahead."""

    def __init__(self) -> None:
        self.items: dict[str, Expiring] = {}
        self.renewed: list[tuple[str, float]] = []
        self.attempts: list[tuple[str, float]] = []
        self.outage: Callable[[str], BaseException | None] = lambda name: None
        self.polls = 0
        self.reconciles = 0
        self.fail_polls = 0

    def add(self, name: str, expires_in: float | None) -> None:
        at = None if expires_in is None else clock.utcnow() + timedelta(seconds=expires_in)
        self.items[name] = Expiring(name, at)

    async def expiring(self, before: datetime, limit: int) -> list[Expiring]:
        self.polls += 1
        if self.fail_polls:
            self.fail_polls -= 1
            raise RuntimeError("database unavailable")
        due = [i for i in self.items.values() if i.expires_at is None or i.expires_at < before]
        return due[:limit]

    async def refresh(self, name: str) -> None:
        now = trio.current_time()
        self.attempts.append((name, now))
        await trio.sleep(0.2)  # a PDS round trip
        problem = self.outage(name)
        if isinstance(problem, LockedOut):  # stored, as CommunitySessions stores it
            self.items[name] = Expiring(name, self.items[name].expires_at, locked_out=True)
        if problem is not None:
            raise problem
        self.items[name] = Expiring(name, clock.utcnow() + TOKEN_LIFETIME)
        self.renewed.append((name, trio.current_time()))

    async def reconcile(self) -> int:
        self.reconciles += 1
        return 0


def refresher(source: FakeSource, **options: object) -> TokenRefresher:
    return TokenRefresher(
        source,
        metrics=Metrics(),
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


def test_plan_spreads_within_the_window_and_never_past_the_safety_margin() -> None:
    ref = TokenRefresher(FakeSource(), metrics=Metrics(), ahead=1800, safety=300)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for seed in range(200):
        ref.rng = random.Random(seed)
        delay = ref.plan(now + timedelta(minutes=30), now)
        assert 0 <= delay <= (1800 - 300) / 2
        soon = ref.plan(now + timedelta(minutes=2), now)
        assert 0 <= soon <= 5
        assert 0 <= ref.plan(None, now) <= 5
        assert 0 <= ref.plan(now - timedelta(minutes=1), now) <= 5  # already expired
    delays = {round(ref.plan(now + timedelta(minutes=30), now)) for _ in range(50)}
    assert len(delays) > 20  # jittered, not one instant


async def test_a_thousand_communities_expiring_together_are_spread_out(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = FakeSource()
    for i in range(1000):
        source.add(f"c{i}", 30 * 60)
    ref = refresher(source, rate=2.0, concurrency=4, poll_interval=60.0)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(26 * 60)
        nursery.cancel_scope.cancel()
    assert len({name for name, _ in source.renewed}) == 1000
    times = sorted(t - start for _, t in source.renewed)
    assert times[-1] <= 25 * 60  # all before expiry minus the safety margin
    assert times[-1] - times[0] > 5 * 60  # spread, not a burst
    # The token bucket caps the rate: never more than rate*window + burst in a window.
    for i in range(len(times)):
        j = i
        while j < len(times) and times[j] - times[i] < 10.0:
            j += 1
        assert j - i <= 2 * 10 + 2
    # Renewed tokens are not renewed again within the run (they now expire in 2 hours).
    assert len(source.renewed) == 1000


async def test_failed_renewals_back_off_then_succeed(autojump_clock: trio.abc.Clock) -> None:
    source = FakeSource()
    source.add("flaky", 60)
    failures = iter([PdsUnavailable("down"), PdsUnavailable("down")])
    source.outage = lambda name: next(failures, None)
    ref = refresher(source, retry_base=30.0, retry_cap=900.0, poll_interval=3600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(400)
        nursery.cancel_scope.cancel()
    attempts = [t for _, t in source.attempts]
    assert len(attempts) == 3
    first_gap, second_gap = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert 15 <= first_gap - 0.2 <= 30.5  # equal jitter over [base/2, base]
    assert 30 <= second_gap - 0.2 <= 60.5  # doubled
    assert source.renewed and source.renewed[0][0] == "flaky"
    assert ref.states["flaky"].failures == 0
    assert ref.details()["failing"] == {}


async def test_the_breaker_holds_renewals_while_the_pds_is_down(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = FakeSource()
    for i in range(10):
        source.add(f"c{i}", 60)
    down_until = 200.0
    start = trio.current_time()

    def outage(name: str) -> BaseException | None:
        if trio.current_time() - start < down_until:
            return PdsUnavailable("connection refused")
        return None

    source.outage = outage
    breaker = CircuitBreaker(threshold=3, cooldown=60.0)
    ref = refresher(source, breaker=breaker, concurrency=1, poll_interval=3600.0, retry_base=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(20)
        assert breaker.state.value == "open"
        opened_attempts = len(source.attempts)
        assert opened_attempts == 3  # threshold reached, then nothing during the cooldown
        assert ref.details()["breaker"] == "open"
        await trio.sleep(35)  # still inside the 60 s cooldown
        assert len(source.attempts) == opened_attempts
        await trio.sleep(10)  # past it: exactly one probe
        assert len(source.attempts) == opened_attempts + 1
        await trio.sleep(400)
        nursery.cancel_scope.cancel()
    # Probes during the outage were one at a time, a cooldown apart.
    during = [t - start for _, t in source.attempts if t - start < down_until]
    assert all(b - a >= 59 for a, b in itertools.pairwise(during[3:]))
    assert len({name for name, _ in source.renewed}) == 10
    assert breaker.state.value == "closed"


async def test_locked_out_communities_are_reported_not_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = FakeSource()
    source.add("stuck", 60)
    source.add("fine", 60)
    source.outage = lambda name: LockedOut(name) if name == "stuck" else None
    metrics = Metrics()
    ref = TokenRefresher(source, metrics=metrics, rng=random.Random(1), poll_interval=60.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(600)
        nursery.cancel_scope.cancel()
    assert [n for n, _ in source.attempts].count("stuck") == 1
    details = ref.details()
    assert details["locked_out"] == ["stuck"]
    assert details["failing"]["stuck"]["locked_out"] is True
    assert metrics.registry.get_sample_value("coves_community_locked_out") == 1.0
    assert (
        metrics.registry.get_sample_value("coves_community_token_failures", {"community": "stuck"})
        == 1.0
    )
    assert [n for n, _ in source.renewed] == ["fine"]


async def test_new_communities_are_found_by_the_next_poll_and_poll_failures_pass(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = FakeSource()
    source.fail_polls = 1
    ref = refresher(source, poll_interval=60.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(10)
        assert source.polls == 1 and source.renewed == []
        source.add("late", None)  # no usable token: renew as soon as seen
        await trio.sleep(90)
        nursery.cancel_scope.cancel()
    assert [n for n, _ in source.renewed] == ["late"]
    assert source.polls >= 2
    assert source.reconciles >= 1  # interrupted creates are resumed on each poll


async def test_health_details_show_the_next_renewal_and_failures(
    autojump_clock: trio.abc.Clock,
) -> None:
    source = FakeSource()
    source.add("a", 20 * 60)
    source.add("b", 60)
    source.outage = lambda name: PdsUnavailable("down") if name == "b" else None
    ref = refresher(source, poll_interval=3600.0, retry_base=100.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ref.run)
        await trio.sleep(10)
        details = ref.details()
        nursery.cancel_scope.cancel()
    assert details["tracked"] == 2
    assert details["planned"] == 2  # a: ahead of expiry; b: its retry
    assert details["next_renewal_in"] is not None and details["next_renewal_in"] > 0
    assert details["failing"]["b"]["failures"] == 1
    assert 40 <= details["failing"]["b"]["next_attempt_in"] <= 100
    assert "down" in details["failing"]["b"]["last_error"]


@pytest.mark.parametrize("ahead", [60.0, 1800.0])
def test_safety_never_exceeds_half_the_window(ahead: float) -> None:
    ref = TokenRefresher(FakeSource(), metrics=Metrics(), ahead=ahead, safety=300.0)
    assert ref.safety <= ahead / 2


async def test_supervised_child_reports_in_health(autojump_clock: trio.abc.Clock) -> None:
    from nurseries.community_refresher import community_refresher_child
    from nurseries.supervisor import open_supervisor

    source = FakeSource()
    source.add("down", 60)
    source.outage = lambda name: PdsUnavailable("connection refused")
    spec = community_refresher_child(source, metrics=Metrics(), ahead=1800.0, enabled=True)
    assert spec is not None
    async with open_supervisor() as supervisor:
        await supervisor.start(spec)
        await trio.sleep(30)
        report = supervisor.health_report()["community_refresher"]
        assert supervisor.healthy  # not critical: a PDS outage does not fail _health
    details = report["details"]
    assert details["failing"]["down"]["failures"] >= 1
    assert "connection refused" in details["failing"]["down"]["last_error"]
    assert details["breaker"] == "closed"  # one failure: below the threshold
