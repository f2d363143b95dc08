"""Admission control: overload is refused promptly with 503, admitted work stays bounded.

The controller alone runs under MockClock (every wait and timeout is exact);
the dispatcher is driven to overload with handlers that block on an event
the test controls, so no outcome depends on how fast the machine is; one
test does the same over a real socket. Event-loop lag is made under MockClock
by jumping the clock without a checkpoint (the loop "was blocked" that long),
and over a real socket by a handler that blocks the loop with time.sleep.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from coves.admission import (
    ARRIVED,
    EXPECTED_WAIT,
    LATE,
    LOOP_LAG,
    QUEUE_FULL,
    REASONS,
    TIMEOUT,
    AdmissionControl,
    LoopLag,
    Overloaded,
)
from coves.context import AppContext
from coves.xrpc.app import create_app
from coves.xrpc.dispatch import XrpcASGI
from coves.xrpc.routing import Router, XRPCRequest
from nurseries.xrpc_server import XRPCServer
from tests.foundation.conftest import offline_context
from tests.support.pool import saturated

PEER = {"client": ("203.0.113.9", 50000)}


# -- the controller -----------------------------------------------------------------------
async def hold_slot(gate: AdmissionControl, release: trio.Event) -> None:
    """Occupy one of ``gate``'s slots until ``release`` is set."""
    async with gate.admit():
        await release.wait()


async def test_admits_up_to_the_limit_then_queues_in_arrival_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(2, max_queue=10, queue_timeout=5.0)
    order: list[str] = []

    async def request(name: str, hold: float) -> None:
        async with gate.admit():
            order.append(name)
            await trio.sleep(hold)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request, "a", 1.0)
        await trio.sleep(0.01)
        nursery.start_soon(request, "b", 2.0)
        await trio.sleep(0.1)
        assert (gate.active, gate.waiting) == (2, 0)
        for name in ("c", "d", "e"):
            nursery.start_soon(request, name, 0.5)
            await trio.sleep(0.01)
        assert (gate.active, gate.waiting) == (2, 3)
    assert order == ["a", "b", "c", "d", "e"]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_full_queue_refuses_at_once(autojump_clock: trio.testing.MockClock) -> None:
    gate = AdmissionControl(1, max_queue=1, queue_timeout=5.0)
    release = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_slot, gate, release)
        nursery.start_soon(hold_slot, gate, release)  # queued
        await trio.sleep(0.1)
        started = trio.current_time()
        with pytest.raises(Overloaded) as refused:
            await gate.acquire()
        assert refused.value.reason == QUEUE_FULL
        assert trio.current_time() == started  # no waiting at all
        release.set()
    assert (gate.active, gate.waiting) == (0, 0)


async def test_waiting_longer_than_the_timeout_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=5, queue_timeout=0.5)
    release = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_slot, gate, release)
        await trio.sleep(0.1)
        started = trio.current_time()
        with pytest.raises(Overloaded) as refused:
            await gate.acquire()
        assert refused.value.reason == TIMEOUT
        assert trio.current_time() - started == pytest.approx(0.5)
        assert gate.waiting == 0
        release.set()
    assert gate.active == 0


async def test_a_queue_that_would_take_too_long_is_refused_before_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=100, queue_timeout=1.0)
    refusals: list[tuple[str, float]] = []

    async def request(hold: float) -> None:
        started = trio.current_time()
        try:
            async with gate.admit():
                await trio.sleep(hold)
        except Overloaded as over:
            refusals.append((over.reason, trio.current_time() - started))

    async with trio.open_nursery() as nursery:
        # One slot, 0.1 s per request, a queue always behind it: the rate is learnt.
        for _ in range(4):
            nursery.start_soon(request, 0.1)
            await trio.sleep(0.001)
        await trio.sleep(0.5)
        assert (gate.active, gate.waiting) == (0, 0)
        assert gate.expected_wait(1) == pytest.approx(0.1, rel=0.05)
        gate.queue_timeout = 0.25
        # One running, two queued (0.1 and 0.2 s away): admitted in time. A third
        # in the queue would be 0.3 s away, over the budget: refused without waiting.
        for _ in range(4):
            nursery.start_soon(request, 0.1)
            await trio.sleep(0.001)
    assert refusals == [(EXPECTED_WAIT, 0.0)]


async def test_an_idle_spell_does_not_count_against_capacity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=100, queue_timeout=0.25)

    async def request() -> None:
        async with gate.admit():
            await trio.sleep(0.05)

    for _ in range(3):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(request)
            nursery.start_soon(request)
        await trio.sleep(60.0)  # idle
    async with trio.open_nursery() as nursery:
        for _ in range(4):  # three queued, 0.15 s of work ahead at most: all admitted
            nursery.start_soon(request)
    assert gate.expected_wait(1) is not None
    assert gate.expected_wait(1) < 0.1  # type: ignore[operator]


async def test_cancelled_waiters_give_their_place_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=3, queue_timeout=10.0)
    release = trio.Event()
    served: list[int] = []
    scopes: list[trio.CancelScope] = []

    async def request(n: int) -> None:
        async with gate.admit():
            served.append(n)
            if n == 0:
                await release.wait()

    async def gives_up() -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            async with gate.admit():
                raise AssertionError("a cancelled waiter must not be admitted")

    async with trio.open_nursery() as nursery:
        for task in (partial(request, 0), gives_up, partial(request, 1), partial(request, 2)):
            nursery.start_soon(task)
            await trio.sleep(0.01)
        assert (gate.active, gate.waiting) == (1, 3)
        scopes[0].cancel()
        await trio.sleep(0.01)
        assert (gate.active, gate.waiting) == (1, 2)
        release.set()
    assert served == [0, 1, 2]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_random_overload_keeps_the_books_straight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rnd = random.Random(12)
    gate = AdmissionControl(3, max_queue=5, queue_timeout=0.2)
    peak = 0
    outcomes: dict[str, int] = {}

    async def request() -> None:
        nonlocal peak
        with trio.move_on_after(rnd.choice([0.05, 0.3, 10.0])):  # some clients give up
            try:
                async with gate.admit():
                    peak = max(peak, gate.active)
                    await trio.sleep(rnd.expovariate(1 / 0.05))
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except Overloaded as over:
                outcomes[over.reason] = outcomes.get(over.reason, 0) + 1

    async with trio.open_nursery() as nursery:
        for _ in range(600):
            nursery.start_soon(request)
            await trio.sleep(rnd.expovariate(1 / 0.01))  # about twice what 3 slots serve
    assert peak == 3
    assert (gate.active, gate.waiting) == (0, 0)
    assert outcomes.get("ok", 0) > 100
    assert sum(v for k, v in outcomes.items() if k != "ok") > 50


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdmissionControl(0)


# -- event-loop lag -----------------------------------------------------------------------
def _stall(clock: trio.testing.MockClock, seconds: float) -> None:
    """The event loop does not run for ``seconds`` (no checkpoint while time passes)."""
    clock.jump(seconds)


async def _sampled(lag: LoopLag, samples: int) -> None:
    """Let the loop run until the monitor has taken ``samples`` (no time passes)."""
    started = trio.current_time()
    while lag.samples < samples:
        await trio.sleep(0)
    assert trio.current_time() == started


async def test_the_lag_monitor_measures_how_late_the_loop_wakes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[float] = []
    lag = LoopLag(0.025, observe=seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(lag.run)
        await trio.sleep(0.11)  # an idle loop wakes it on time
        assert lag.samples == 4
        assert seen == [0.0, 0.0, 0.0, 0.0]
        assert lag.current() == 0.0
        _stall(autojump_clock, 0.4)  # from 15 ms before its next wake-up
        # Stalled: known at once from how overdue the monitor is, before it runs.
        assert lag.current() == pytest.approx(0.385)
        assert lag.samples == 4
        await _sampled(lag, 5)
        assert lag.last == pytest.approx(0.385)
        assert seen[-1] == pytest.approx(0.385)
        # One late wake-up counts a quarter: a single stall is not a standing lag.
        assert lag.smoothed == pytest.approx(0.385 / 4)
        assert lag.current() == pytest.approx(0.385 / 4)
        await trio.sleep(0.25)  # on time again: the average decays
        assert lag.current() < 0.01
        nursery.cancel_scope.cancel()
    assert lag.current() == 0.0  # stopped: nothing known, nothing shed


async def test_a_standing_lag_raises_the_average_to_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lag = LoopLag(0.025)
    async with trio.open_nursery() as nursery:
        await nursery.start(lag.run)
        for n in range(1, 21):  # every wake-up 50 ms late
            assert lag._due is not None
            await trio.sleep_until(lag._due - 0.001)
            _stall(autojump_clock, 0.051)
            await _sampled(lag, n)
            assert lag.last == pytest.approx(0.05)
        assert lag.smoothed == pytest.approx(0.05 * (1 - 0.75**20))
        nursery.cancel_scope.cancel()


def test_the_lag_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoopLag(0.0)


def _lagging(seconds: float) -> LoopLag:
    """A monitor that is not running but measured ``seconds`` of lag."""
    lag = LoopLag()
    lag.smoothed = seconds
    return lag


class _Draws:
    def __init__(self, value: float) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


async def test_under_the_lag_target_nothing_is_shed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    draw = _Draws(0.0)  # would shed anything it were asked about
    gate = AdmissionControl(2, loop_lag=_lagging(0.1), max_loop_lag=0.1, draw=draw)
    assert gate.shed_probability() == 0.0
    async with gate.admit():
        assert gate.active == 1
    assert draw.calls == 0


@pytest.mark.parametrize(
    ("lag", "draw", "shed"),
    [
        (0.15, 0.49, True),  # half over the target: half are shed
        (0.15, 0.51, False),
        (0.125, 0.24, True),  # a quarter over: a quarter
        (0.125, 0.26, False),
        (0.2, 0.999, True),  # twice the target and beyond: all
        (5.0, 0.999, True),
    ],
)
async def test_over_the_lag_target_a_share_rising_with_the_excess_is_shed(
    autojump_clock: trio.testing.MockClock, lag: float, draw: float, shed: bool
) -> None:
    gate = AdmissionControl(2, loop_lag=_lagging(lag), max_loop_lag=0.1, draw=_Draws(draw))
    assert gate.shed_probability() == pytest.approx(min(1.0, (lag - 0.1) / 0.1))
    started = trio.current_time()
    if shed:
        with pytest.raises(Overloaded) as refused:
            await gate.acquire()
        assert refused.value.reason == LOOP_LAG
        assert trio.current_time() == started  # refused at once
        assert (gate.active, gate.waiting) == (0, 0)  # it never held a slot
    else:
        assert await gate.acquire() == 0.0
        assert gate.active == 1
        gate.release()


async def test_lag_shedding_can_be_turned_off(autojump_clock: trio.testing.MockClock) -> None:
    for gate in (
        AdmissionControl(1, loop_lag=_lagging(9.0), max_loop_lag=0.0),
        AdmissionControl(1, loop_lag=None, max_loop_lag=0.1),
    ):
        assert gate.shed_probability() == 0.0
        async with gate.admit():
            pass


async def test_shedding_stops_when_the_lag_falls(autojump_clock: trio.testing.MockClock) -> None:
    lag = LoopLag(0.025)
    gate = AdmissionControl(4, loop_lag=lag, max_loop_lag=0.1, draw=_Draws(0.5))
    async with trio.open_nursery() as nursery:
        await nursery.start(lag.run)
        _stall(autojump_clock, 2.0)
        with pytest.raises(Overloaded) as refused:  # the first request after the stall
            await gate.acquire()
        assert refused.value.reason == LOOP_LAG
        await _sampled(lag, 1)  # its average is now over twice the target
        assert lag.current() > 0.2
        with pytest.raises(Overloaded):
            await gate.acquire()
        after_stall = lag.samples
        while gate.shed_probability() > 0.0:
            await trio.sleep(0.001)
        # A 0.49 s average losing a quarter per on-time sample: under 100 ms after six.
        assert lag.samples - after_stall == 6
        async with gate.admit():
            assert gate.active == 1
        nursery.cancel_scope.cancel()


async def _overload_model(clock: trio.testing.MockClock, max_loop_lag: float) -> dict[str, Any]:
    """One core, the event loop its only queue: 500 requests/s arrive (Poisson, for 4 s)
    at a loop that serves about 240/s (0.2 ms of CPU to parse each, then 4 steps of
    1 ms between awaits). Slots never run out, so only the lag can shed."""
    rnd = random.Random(7)
    lag = LoopLag()
    gate = AdmissionControl(
        100_000, max_queue=0, queue_timeout=60.0, loop_lag=lag, max_loop_lag=max_loop_lag,
        draw=rnd.random,
    )  # fmt: skip
    latencies: list[float] = []
    shed: dict[str, int] = {}
    lags: list[float] = []

    async def request(arrived: float) -> None:
        _stall(clock, 0.0002)  # parsing it
        try:
            async with gate.admit():
                for _ in range(4):
                    _stall(clock, 0.001)
                    await trio.sleep(0)
        except Overloaded as over:
            shed[over.reason] = shed.get(over.reason, 0) + 1
            return
        latencies.append(trio.current_time() - arrived)

    async with trio.open_nursery() as nursery:
        await nursery.start(lag.run)
        start = due = trio.current_time()
        async with trio.open_nursery() as arrivals:
            while due < start + 4.0:
                await trio.sleep_until(due)
                while due <= trio.current_time():  # everything that arrived meanwhile
                    arrivals.start_soon(request, due)
                    due += rnd.expovariate(500.0)
                lags.append(lag.smoothed)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p99": latencies[int(len(latencies) * 0.99)],
        "shed": shed,
        "lag": sum(lags[len(lags) // 4 :]) / len(lags[len(lags) // 4 :]),
    }


async def test_lag_shedding_holds_latency_without_losing_throughput(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The proportional controller under twice the loop's capacity: about half is
    refused, what is admitted is served in bounded time at nearly the rate the loop
    serves without shedding (where latency grows for as long as the overload lasts),
    and the lag stays between the target and twice it."""
    unshed = await _overload_model(autojump_clock, 0.0)
    shedding = await _overload_model(autojump_clock, 0.05)
    assert unshed["shed"] == {}
    assert unshed["p99"] > 4.0
    assert set(shedding["shed"]) == {LOOP_LAG}
    refused = shedding["shed"][LOOP_LAG]
    assert 0.3 < refused / (refused + shedding["rate"] * 4) < 0.7
    assert shedding["rate"] > 0.9 * unshed["rate"]
    assert shedding["p99"] < 1.0
    assert 0.05 < shedding["lag"] < 0.1


# -- time spent before reaching admission -------------------------------------------------
async def test_a_request_that_arrives_past_the_queue_timeout_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(4, queue_timeout=0.5)
    now = trio.current_time()
    with pytest.raises(Overloaded) as refused:
        await gate.acquire(arrived=now - 0.5)
    assert refused.value.reason == LATE
    assert (gate.active, gate.waiting) == (0, 0)
    # Just in time, with slots free: admitted, and the wait reported from arrival.
    assert await gate.acquire(arrived=now - 0.4) == pytest.approx(0.4)
    gate.release()
    # A stamp from the future (another clock) counts as no wait at all.
    assert await gate.acquire(arrived=now + 5.0) == 0.0
    gate.release()


async def test_time_before_admission_shortens_the_wait_for_a_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=5, queue_timeout=0.5)
    release = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_slot, gate, release)
        await trio.sleep(0.1)
        started = trio.current_time()
        with pytest.raises(Overloaded) as refused:
            await gate.acquire(arrived=started - 0.3)
        assert refused.value.reason == TIMEOUT
        assert trio.current_time() - started == pytest.approx(0.2)  # the rest of 0.5 s
        assert gate.waiting == 0
        release.set()
    assert gate.active == 0


async def test_the_expected_wait_is_held_against_what_is_left_of_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=100, queue_timeout=0.5)
    gate._interval = 0.1  # learnt: one completion every 100 ms
    release = trio.Event()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold_slot, gate, release)
        await trio.sleep(0.01)
        now = trio.current_time()
        # First in the queue: 0.1 s ahead. Fits 0.5 s, not the 0.05 s left after 0.45 s.
        with pytest.raises(Overloaded) as refused:
            await gate.acquire(arrived=now - 0.45)
        assert refused.value.reason == EXPECTED_WAIT
        assert trio.current_time() == now
        release.set()


async def test_an_admitted_request_reports_its_wait_since_arrival(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = AdmissionControl(1, max_queue=5, queue_timeout=1.0)

    async def holder() -> None:
        async with gate.admit():
            await trio.sleep(0.2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await trio.sleep(0.05)
        waited = await gate.acquire(arrived=trio.current_time() - 0.1)
        assert waited == pytest.approx(0.25)  # 0.1 before, 0.15 queued
        gate.release()


# -- through the dispatcher ---------------------------------------------------------------
def _blocking_app(ctx: AppContext, **limits: Any) -> tuple[Any, trio.Event]:
    release = trio.Event()
    router = Router()

    @router.query("test.block")
    async def block(req: XRPCRequest) -> Any:
        await release.wait()
        return {"ok": True}

    settings = ctx.settings.replace(**limits)
    app = create_app(replace(ctx, settings=settings), router.endpoints)
    return app, release


def _gate(app: Any) -> AdmissionControl:
    dispatcher = app.asgi_app
    assert isinstance(dispatcher, XrpcASGI)
    assert dispatcher.admission is not None
    return dispatcher.admission


async def test_overload_gets_a_prompt_503_and_health_and_metrics_still_answer(
    ctx: AppContext,
) -> None:
    app, release = _blocking_app(
        ctx,
        admission_max_concurrency=2,
        admission_max_queue=1,
        admission_queue_timeout_ms=60_000,
        admission_retry_after_seconds=3,
    )
    gate = _gate(app)
    client = app.test_client()
    statuses: list[int] = []

    async def blocked() -> None:
        response = await client.get("/xrpc/test.block", scope_base=PEER)
        statuses.append(response.status_code)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(3):  # two run, one waits
                nursery.start_soon(blocked)
            while (gate.active, gate.waiting) != (2, 1):
                await trio.sleep(0.01)
            shed = await client.get("/xrpc/test.block", scope_base=PEER)
            assert shed.status_code == 503
            assert shed.headers["Retry-After"] == "3"
            assert shed.headers["X-Request-ID"]
            body = await shed.get_json()
            assert body["error"] == "NotEnoughResources"
            # Operational routes are not behind admission control.
            health = await client.get("/xrpc/_health", scope_base=PEER)
            assert health.status_code == 200
            metrics = (await (await client.get("/metrics", scope_base=PEER)).get_data()).decode()
            assert 'coves_admission_rejected_total{reason="queue_full"} 1.0' in metrics
            assert 'coves_http_requests_total{nsid="test.block",status="503"} 1.0' in metrics
            release.set()
    assert statuses == [200, 200, 200]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_request_that_waits_too_long_is_shed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, release = _blocking_app(
        offline_context(), admission_max_concurrency=1, admission_queue_timeout_ms=250
    )
    client = app.test_client()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: client.get("/xrpc/test.block", scope_base=PEER))
        await trio.sleep(0.1)
        started = trio.current_time()
        shed = await client.get("/xrpc/test.block", scope_base=PEER)
        assert shed.status_code == 503
        assert trio.current_time() - started == pytest.approx(0.25)
        release.set()
    metrics = (await (await client.get("/metrics", scope_base=PEER)).get_data()).decode()
    assert 'coves_admission_rejected_total{reason="timeout"} 1.0' in metrics


async def test_admission_control_can_be_turned_off() -> None:
    app, release = _blocking_app(offline_context(), admission_max_concurrency=0)
    assert app.asgi_app.admission is None
    release.set()
    response = await app.test_client().get("/xrpc/test.block", scope_base=PEER)
    assert response.status_code == 200


def _counting_app(ctx: AppContext, **limits: Any) -> tuple[Any, list[int]]:
    """An app whose ``test.ok`` counts the calls that reached it."""
    calls: list[int] = []
    router = Router()

    @router.query("test.ok")
    async def ok(req: XRPCRequest) -> Any:
        calls.append(1)
        return {"ok": True}

    # The tests' settings turn admission control off; these turn it on.
    settings = ctx.settings.replace(**{"admission_max_concurrency": 8, **limits})
    return create_app(replace(ctx, settings=settings), router.endpoints), calls


async def _metrics_text(client: Any) -> str:
    response = await client.get("/metrics", scope_base=PEER)
    assert response.status_code == 200
    return (await response.get_data()).decode()


async def test_a_lagging_loop_sheds_requests_before_their_handler(ctx: AppContext) -> None:
    app, calls = _counting_app(ctx, admission_max_loop_lag_ms=100, admission_retry_after_seconds=4)
    dispatcher = app.asgi_app
    assert isinstance(dispatcher, XrpcASGI)
    client = app.test_client()
    with trio.fail_after(30):
        metrics = await _metrics_text(client)
        for reason in REASONS:  # exported before the first refusal
            assert f'coves_admission_rejected_total{{reason="{reason}"}} 0.0' in metrics
        dispatcher.loop_lag.smoothed = 0.2  # twice the target: everything is shed
        shed = await client.get("/xrpc/test.ok", scope_base=PEER)
        assert shed.status_code == 503
        assert shed.headers["Retry-After"] == "4"
        assert shed.headers["X-Request-ID"]
        assert await shed.get_json() == {
            "error": "NotEnoughResources",
            "message": "the server is busy; retry later",
        }
        assert calls == []
        gate = _gate(app)
        assert (gate.active, gate.waiting) == (0, 0)
        # Operational routes are never shed.
        health = await client.get("/xrpc/_health", scope_base=PEER)
        assert health.status_code == 200
        assert (await health.get_json())["status"] == "ok"
        metrics = await _metrics_text(client)
        assert 'coves_admission_rejected_total{reason="loop_lag"} 1.0' in metrics
        assert 'coves_http_requests_total{nsid="test.ok",status="503"} 1.0' in metrics
        dispatcher.loop_lag.smoothed = 0.05  # under the target again
        ok = await client.get("/xrpc/test.ok", scope_base=PEER)
        assert ok.status_code == 200
        assert calls == [1]


async def test_a_stalled_loop_is_shed_until_it_catches_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, calls = _counting_app(offline_context(), admission_max_loop_lag_ms=100)
    dispatcher = app.asgi_app
    assert isinstance(dispatcher, XrpcASGI)
    client = app.test_client()
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.loop_lag.run)
        assert (await client.get("/xrpc/test.ok", scope_base=PEER)).status_code == 200
        _stall(autojump_clock, 2.0)
        shed = await client.get("/xrpc/test.ok", scope_base=PEER)
        assert shed.status_code == 503
        assert (await shed.get_json())["error"] == "NotEnoughResources"
        assert calls == [1]
        await trio.sleep(1.0)  # the loop keeps time again
        assert (await client.get("/xrpc/test.ok", scope_base=PEER)).status_code == 200
        assert calls == [1, 1]
        nursery.cancel_scope.cancel()
    metrics = await _metrics_text(client)
    assert 'coves_admission_rejected_total{reason="loop_lag"} 1.0' in metrics
    # Every sample observed: the stall's, then one per 25 ms through the second after it.
    count = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("coves_event_loop_lag_seconds_count")
    )
    assert 40 <= count <= 42


async def test_a_request_that_reached_the_server_too_long_ago_is_shed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app, calls = _counting_app(offline_context(), admission_queue_timeout_ms=500)
    client = app.test_client()
    now = trio.current_time()
    late = {**PEER, "extensions": {ARRIVED: now - 0.6}}
    shed = await client.get("/xrpc/test.ok", scope_base=late)
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "1"
    assert (await shed.get_json())["error"] == "NotEnoughResources"
    assert calls == []
    in_time = {**PEER, "extensions": {ARRIVED: now - 0.2}}
    assert (await client.get("/xrpc/test.ok", scope_base=in_time)).status_code == 200
    assert calls == [1]
    metrics = await _metrics_text(client)
    assert 'coves_admission_rejected_total{reason="late"} 1.0' in metrics
    assert "coves_admission_wait_seconds_sum 0.2" in metrics  # from arrival, not from dispatch


async def test_overload_over_a_real_socket(ctx: AppContext) -> None:
    app, release = _blocking_app(
        ctx, admission_max_concurrency=1, admission_max_queue=0, admission_queue_timeout_ms=100
    )
    server = XRPCServer(app, "127.0.0.1", 0, grace=1.0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(server.run)
            async with httpx.AsyncClient(base_url=binds[0], timeout=10) as http:
                nursery.start_soon(http.get, "/xrpc/test.block")
                while _gate(app).active == 0:
                    await trio.sleep(0.01)
                shed = await http.get("/xrpc/test.block")
                assert shed.status_code == 503
                assert shed.headers["retry-after"] == "1"
                assert shed.json()["error"] == "NotEnoughResources"
                health = await http.get("/xrpc/_health")
                assert health.status_code == 200
                release.set()
                while _gate(app).active:
                    await trio.sleep(0.01)
                ok = await http.get("/xrpc/test.block")
                assert ok.status_code == 200
            server.request_stop()


async def test_the_server_stamps_when_each_request_arrived(ctx: AppContext) -> None:
    app, calls = _counting_app(ctx)
    dispatcher = app.asgi_app
    stamps: list[float | None] = []

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            stamps.append(scope["extensions"].get(ARRIVED))
        await dispatcher(scope, receive, send)

    app.asgi_app = recorder
    server = XRPCServer(app, "127.0.0.1", 0, grace=1.0)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(server.run)
            async with httpx.AsyncClient(base_url=binds[0], timeout=10) as http:
                before = trio.current_time()
                assert (await http.get("/xrpc/test.ok")).status_code == 200
                after = trio.current_time()
            server.request_stop()
    assert calls == [1]
    assert len(stamps) == 1
    assert stamps[0] is not None and before <= stamps[0] <= after


async def test_requests_arriving_while_the_loop_is_blocked_are_shed_promptly(
    ctx: AppContext,
) -> None:
    """A handler blocks the event loop (time.sleep in 100 ms steps, yielding between
    them) until the test lets it go; requests sent meanwhile from another thread
    are refused with 503 while it still blocks, and _health still answers."""
    app, calls = _counting_app(ctx, admission_max_loop_lag_ms=20)
    router = Router()
    hogging = trio.Event()
    release = trio.Event()

    @router.query("test.hog")
    async def hog(req: XRPCRequest) -> Any:
        hogging.set()
        while not release.is_set():
            time.sleep(0.1)
            await trio.sleep(0)
        return {"ok": True}

    dispatcher = app.asgi_app
    assert isinstance(dispatcher, XrpcASGI)
    dispatcher.table = {**dispatcher.table, **router.endpoints}
    lag = dispatcher.loop_lag
    gate = _gate(app)
    server = XRPCServer(app, "127.0.0.1", 0, grace=1.0)

    def fetch(base: str, path: str) -> tuple[int, str | None, Any]:
        with httpx.Client(base_url=base, timeout=30) as http:
            response = http.get(path)
            return response.status_code, response.headers.get("retry-after"), response.json()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(server.run)
            base = binds[0]
            while lag.samples < 3:  # the monitor runs with the server
                await trio.sleep(0.01)
            assert lag.smoothed < 0.02
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                nursery.start_soon(http.get, "/xrpc/test.hog")
                await hogging.wait()
                while lag.smoothed < 0.04:  # twice the target: every request is shed
                    await trio.sleep(0)
                results: dict[str, list[tuple[int, str | None, Any]]] = {}

                async def one(path: str) -> None:
                    result = await trio.to_thread.run_sync(fetch, base, path)
                    results.setdefault(path, []).append(result)

                async with trio.open_nursery() as clients:
                    for _ in range(5):
                        clients.start_soon(one, "/xrpc/test.ok")
                    clients.start_soon(one, "/xrpc/_health")
                # All answered while the handler still blocks the loop.
                assert not release.is_set()
                assert (
                    results["/xrpc/test.ok"]
                    == [
                        (
                            503,
                            "1",
                            {
                                "error": "NotEnoughResources",
                                "message": "the server is busy; retry later",
                            },
                        )
                    ]
                    * 5
                )
                assert calls == []
                [(health_status, _, health_body)] = results["/xrpc/_health"]
                assert (health_status, health_body["status"]) == (200, "ok")
                metrics = (await http.get("/metrics")).text
                assert 'coves_admission_rejected_total{reason="loop_lag"} 5.0' in metrics
                release.set()
                # The loop keeps time again: requests are served (a stray late wake-up
                # on a busy machine may still shed one; it must not last).
                while True:
                    answer = await http.get("/xrpc/test.ok")
                    if answer.status_code == 200:
                        break
                    assert answer.status_code == 503
                    await trio.sleep(0.05)
                assert calls
                assert (gate.active, gate.waiting) == (0, 0)
            server.request_stop()
    # The monitor stopped with the server: nothing measured, nothing shed.
    assert lag.current() == 0.0


async def test_health_ping_is_not_queued_behind_a_saturated_pool(ctx: AppContext) -> None:
    """Every pooled connection busy and more work queued: the ping still answers."""
    with trio.fail_after(30):
        async with saturated(ctx.db, queued=3):
            with trio.fail_after(3):
                assert await ctx.db.ping() is True
            health = await create_app(ctx, {}).test_client().get("/xrpc/_health")
            assert health.status_code == 200


async def test_ping_reconnects_after_its_connection_is_lost(ctx: AppContext) -> None:
    assert await ctx.db.ping() is True
    side = ctx.db._side_conn
    assert side is not None
    await trio.to_thread.run_sync(side.close)
    assert await ctx.db.ping() is True
    assert ctx.db._side_conn is not side


async def test_ping_survives_the_server_dropping_its_connection(ctx: AppContext) -> None:
    assert await ctx.db.ping() is True
    side = ctx.db._side_conn
    assert side is not None
    pid = side.info.backend_pid
    await ctx.db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert await ctx.db.ping() is True
    assert ctx.db._side_conn is not None and ctx.db._side_conn.info.backend_pid != pid
