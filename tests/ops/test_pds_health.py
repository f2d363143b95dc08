"""The PDS health probe: states, metrics and details under the faults a PDS shows.

Fault injection speaks HTTP through httpx's MockTransport (the wire format
of the reference PDS's ``_health``: 200 with ``{"version": ...}``); timers
run on Trio's MockClock.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import trio
import trio.testing

from coves.metrics import Metrics
from nurseries.pdshealth import PdsHealthProbe, pds_health_child
from tests.ops.test_observability import samples
from tests.support.pds import TestPds

Handler = Callable[[httpx.Request], httpx.Response]


def _probe(handler: Callable[[httpx.Request], object], metrics: Metrics) -> PdsHealthProbe:
    return PdsHealthProbe(
        "https://pds.example/",
        interval=30.0,
        timeout=5.0,
        metrics=metrics,
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
    )


async def test_states_follow_the_answers(autojump_clock: trio.testing.MockClock) -> None:
    answers: list[Callable[[], httpx.Response]] = [
        lambda: httpx.Response(200, json={"version": "0.4.107"}),
        lambda: httpx.Response(503, text="overloaded"),
        lambda: httpx.Response(200, text="<html>proxy error</html>"),
        lambda: httpx.Response(200, json=["not", "an", "object"]),
        lambda: httpx.Response(200, json={"version": "0.4.108"}),
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return answers[len(seen) - 1]()

    metrics = Metrics()
    probe = _probe(handler, metrics)
    assert await probe.check()
    assert probe.details()["state"] == "up" and probe.version == "0.4.107"
    assert samples(metrics, "coves_pds_up") == {(): 1.0}
    assert not await probe.check()
    assert probe.details()["lastError"] == "HTTP 503"
    assert not await probe.check()
    assert probe.details()["lastError"] == "PDS _health: answer is not JSON"
    assert not await probe.check()
    details = probe.details()
    assert details["lastError"] == "PDS answer is not a JSON object"
    assert details["state"] == "down" and details["consecutiveFailures"] == 3
    assert samples(metrics, "coves_pds_up") == {(): 0.0}
    assert await probe.check()
    assert probe.details()["consecutiveFailures"] == 0 and probe.version == "0.4.108"
    await probe.aclose()
    assert seen == ["https://pds.example/xrpc/_health"] * 5  # one attempt each: no retry
    checks = samples(metrics, "coves_pds_health_checks_total")
    assert checks == {
        (("result", "ok"),): 2,
        (("result", "bad_status"),): 1,
        (("result", "bad_body"),): 2,
        (("result", "timeout"),): 0,
        (("result", "unreachable"),): 0,
    }
    assert samples(metrics, "coves_pds_health_check_seconds_count") == {(): 5}
    assert samples(metrics, "coves_pds_last_success_timestamp_seconds")[()] > 0


async def test_a_hanging_or_unreachable_pds_is_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3600)
        raise AssertionError("the probe should have given up")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    metrics = Metrics()
    probe = _probe(hang, metrics)
    started = trio.current_time()
    assert not await probe.check()
    assert trio.current_time() - started == 5.0  # PDS_HEALTH_TIMEOUT_SECONDS, not an hour
    assert probe.details()["lastError"] == "no answer within 5s"
    refusing = _probe(refuse, metrics)
    assert not await refusing.check()
    assert "ConnectError" in str(refusing.details()["lastError"])
    checks = samples(metrics, "coves_pds_health_checks_total")
    assert checks[(("result", "timeout"),)] == 1 and checks[(("result", "unreachable"),)] == 1


async def test_the_child_checks_on_its_interval(autojump_clock: trio.testing.MockClock) -> None:
    times: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(trio.current_time())
        return httpx.Response(200, json={"version": "1"})

    probe = _probe(handler, Metrics())
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.run)
        await trio.sleep(95)
        nursery.cancel_scope.cancel()
    assert [round(t - times[0]) for t in times] == [0, 30, 60, 90]


def test_the_child_is_off_at_interval_zero() -> None:
    assert pds_health_child("http://pds", interval=0, timeout=5, metrics=Metrics()) is None
    spec = pds_health_child("http://pds", interval=30, timeout=5, metrics=Metrics())
    assert spec is not None and spec.name == "pds-health" and not spec.critical


async def test_against_the_reference_pds(pds: TestPds) -> None:
    """The real PDS's _health: up with its version; down while it is stopped; up again."""
    metrics = Metrics()
    probe = PdsHealthProbe(pds.url, interval=30.0, timeout=5.0, metrics=metrics)
    with trio.fail_after(120):
        assert await probe.check(), probe.details()
        version = probe.details()["version"]
        assert isinstance(version, str) and version
        try:
            await trio.to_thread.run_sync(pds.stop_pds)
            assert not await probe.check()
            assert probe.details()["state"] == "down"
            assert samples(metrics, "coves_pds_up") == {(): 0.0}
        finally:
            await trio.to_thread.run_sync(pds.start_pds)
        assert await probe.check()
        assert probe.details()["version"] == version
        await probe.aclose()
    checks = samples(metrics, "coves_pds_health_checks_total")
    assert checks[(("result", "ok"),)] == 2 and checks[(("result", "unreachable"),)] == 1
