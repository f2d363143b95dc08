"""Admission control: overload is refused promptly with 503, admitted work stays bounded.

The controller alone runs under MockClock (every wait and timeout is exact);
the dispatcher is driven to overload with handlers that block on an event
the test controls, so no outcome depends on how fast the machine is; one
test does the same over a real socket.
"""

from __future__ import annotations

import random
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from coves.admission import EXPECTED_WAIT, QUEUE_FULL, TIMEOUT, AdmissionControl, Overloaded
from coves.context import AppContext
from coves.xrpc.app import create_app
from coves.xrpc.dispatch import XrpcASGI
from coves.xrpc.routing import Router, XRPCRequest
from nurseries.xrpc_server import XRPCServer
from tests.foundation.conftest import offline_context
from tests.support.pool import saturated

PEER = {"client": ("203.0.113.9", 50000)}


# -- the controller -----------------------------------------------------------------------
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

    async def holder() -> None:
        async with gate.admit():
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        nursery.start_soon(holder)  # queued
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

    async def holder() -> None:
        async with gate.admit():
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
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
