"""The response micro-cache: alone under MockClock, and behind the dispatcher."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing
from quart_trio import QuartTrio

from coves.auth.base import AuthInput, AuthPolicy, Viewer
from coves.errors import XRPCError
from coves.respcache import HIT, MISS, SHARED, STALE, CachedResponse, ResponseCache
from coves.xrpc.app import create_app
from coves.xrpc.routing import RawResponse, Router, XRPCRequest
from tests.foundation.conftest import offline_context

PEER = {"client": ("203.0.113.9", 50000)}


# -- the cache alone ----------------------------------------------------------


def counting(results: list[bytes], delay: float = 0.0) -> tuple[list[int], Any]:
    calls = [0]

    async def compute() -> CachedResponse:
        calls[0] += 1
        if delay:
            await trio.sleep(delay)
        return CachedResponse(results[min(calls[0], len(results)) - 1])

    return calls, compute


async def test_hit_until_expiry_then_miss(mock_clock: trio.testing.MockClock) -> None:
    cache = ResponseCache()
    calls, compute = counting([b"one", b"two"])
    assert (await cache.get("k", 1.0, compute)) == (CachedResponse(b"one"), MISS)
    mock_clock.jump(0.99)
    assert (await cache.get("k", 1.0, compute)) == (CachedResponse(b"one"), HIT)
    mock_clock.jump(0.02)
    assert (await cache.get("k", 1.0, compute)) == (CachedResponse(b"two"), MISS)
    assert calls == [2]


async def test_concurrent_misses_share_one_computation(autojump_clock: object) -> None:
    cache = ResponseCache()
    calls, compute = counting([b"only"], delay=0.5)
    outcomes: list[tuple[CachedResponse, str]] = []

    async def reader() -> None:
        outcomes.append(await cache.get("k", 1.0, compute))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(reader)
    assert calls == [1]
    assert {value.body for value, _ in outcomes} == {b"only"}
    assert sorted(outcome for _, outcome in outcomes) == [MISS] + [SHARED] * 9


async def test_expired_entry_is_served_while_one_request_refreshes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cache = ResponseCache()
    calls, compute = counting([b"old", b"new"], delay=0.3)
    await cache.get("k", 1.0, compute)
    await trio.sleep(1.5)  # expired, but less than one TTL ago
    seen: list[tuple[bytes, str]] = []

    async def refresher() -> None:
        value, outcome = await cache.get("k", 1.0, compute)
        seen.append((value.body, outcome))

    async def reader() -> None:
        await trio.sleep(0.1)  # while the refresh runs
        value, outcome = await cache.get("k", 1.0, compute)
        seen.append((value.body, outcome))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(refresher)
        nursery.start_soon(reader)
    assert calls == [2]
    assert sorted(seen) == [(b"new", MISS), (b"old", STALE)]


async def test_long_expired_entry_is_not_served_stale(autojump_clock: object) -> None:
    cache = ResponseCache()
    calls, compute = counting([b"old", b"new"], delay=0.3)
    await cache.get("k", 1.0, compute)
    await trio.sleep(5.0)  # far past expiry: waiters wait for the fresh copy
    seen: list[tuple[bytes, str]] = []

    async def get(delay: float) -> None:
        await trio.sleep(delay)
        value, outcome = await cache.get("k", 1.0, compute)
        seen.append((value.body, outcome))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get, 0.0)
        nursery.start_soon(get, 0.1)
    assert calls == [2]
    assert sorted(seen) == [(b"new", MISS), (b"new", SHARED)]


async def test_errors_are_shared_with_waiters_but_not_stored(autojump_clock: object) -> None:
    cache = ResponseCache()
    calls = [0]

    async def failing() -> CachedResponse:
        calls[0] += 1
        await trio.sleep(0.2)
        raise XRPCError(404, "PostNotFound", "no such post", headers={"X": "1"})

    errors: list[XRPCError] = []

    async def reader() -> None:
        try:
            await cache.get("k", 1.0, failing)
        except XRPCError as err:
            errors.append(err)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(reader)
    assert calls == [1]
    assert [(e.status, e.error, e.headers) for e in errors] == [
        (404, "PostNotFound", {"X": "1"})
    ] * 3
    assert len(cache) == 0
    _, compute = counting([b"ok"])
    assert (await cache.get("k", 1.0, compute))[1] == MISS


async def test_other_failures_let_waiters_compute_for_themselves(autojump_clock: object) -> None:
    cache = ResponseCache()
    calls = [0]

    async def flaky() -> CachedResponse:
        calls[0] += 1
        await trio.sleep(0.2)
        if calls[0] == 1:
            raise RuntimeError("boom")
        return CachedResponse(b"fine")

    results: list[object] = []

    async def reader() -> None:
        try:
            results.append((await cache.get("k", 1.0, flaky))[0].body)
        except RuntimeError:
            results.append("error")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(0.05)
        nursery.start_soon(reader)
    assert sorted(map(str, results)) == ["b'fine'", "error"]


async def test_cancelled_computation_releases_waiters(autojump_clock: object) -> None:
    cache = ResponseCache()
    _, slow = counting([b"never"], delay=10.0)
    _, quick = counting([b"quick"])
    got: list[bytes] = []

    async def waiter() -> None:
        await trio.sleep(0.1)
        got.append((await cache.get("k", 1.0, quick))[0].body)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        with trio.move_on_after(1.0):
            await cache.get("k", 1.0, slow)
    assert got == [b"quick"]


async def test_size_is_bounded_by_entries_and_bytes(mock_clock: object) -> None:
    cache = ResponseCache(max_entries=2, max_bytes=10_000)
    for key in ("a", "b"):
        await cache.get(key, 60.0, counting([key.encode()])[1])
    await cache.get("a", 60.0, counting([b"x"])[1])  # touch: "b" is now least recent
    await cache.get("c", 60.0, counting([b"c"])[1])
    assert len(cache) == 2
    assert (await cache.get("a", 60.0, counting([b"recomputed"])[1]))[1] == HIT
    assert (await cache.get("b", 60.0, counting([b"b2"])[1])) == (CachedResponse(b"b2"), MISS)

    small = ResponseCache(max_entries=100, max_bytes=4000)
    for i in range(10):
        await small.get(i, 60.0, counting([b"x" * 400])[1])
    assert small.bytes <= 4000
    assert len(small) < 10
    # One response larger than an eighth of the budget is never kept.
    await small.get("huge", 60.0, counting([b"y" * 1000])[1])
    assert (await small.get("huge", 60.0, counting([b"z"])[1]))[1] == MISS


# -- behind the dispatcher ------------------------------------------------------


class Handlers:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.fail_next = False

    def count(self, name: str) -> int:
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]


class OptionalAuth:
    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        return Viewer(did=header.removeprefix("Bearer "), method="service_auth") if header else None


def cached_app(
    cache_seconds: float = 1.0, setting: float = 1.0, general: int = 100
) -> tuple[QuartTrio, Handlers, Any]:
    handlers = Handlers()
    router = Router()

    @router.query("test.feed", auth=AuthPolicy.OPTIONAL, cache_seconds=cache_seconds)
    async def feed(req: XRPCRequest) -> Any:
        n = handlers.count("feed")
        if handlers.fail_next:
            handlers.fail_next = False
            raise XRPCError(404, "NotFound", "gone for now")
        req.response_headers["Atproto-Repo-Rev"] = f"rev{n}"
        return {"n": n, "params": req.params, "viewer": req.viewer.did if req.viewer else None}

    @router.query("test.slow", cache_seconds=cache_seconds)
    async def slow(req: XRPCRequest) -> Any:
        n = handlers.count("slow")
        await trio.sleep(0.5)
        return {"n": n}

    @router.query("test.plain")
    async def plain(req: XRPCRequest) -> Any:
        return {"n": handlers.count("plain")}

    @router.query("test.raw", cache_seconds=cache_seconds)
    async def raw(req: XRPCRequest) -> Any:
        n = handlers.count("raw")
        return RawResponse(b"not json %d" % n, status=202, content_type="text/plain")

    ctx = offline_context()
    ctx = replace(
        ctx,
        settings=ctx.settings.replace(response_cache_seconds=setting, rate_limit_general=general),
    )
    ctx = replace(ctx, authenticator=OptionalAuth())
    return create_app(ctx, router.endpoints), handlers, ctx


async def test_hits_get_their_own_request_id_and_rate_limit_headers(
    mock_clock: trio.testing.MockClock,
) -> None:
    app, handlers, ctx = cached_app()
    client = app.test_client()
    first = await client.get("/xrpc/test.feed?a=1", scope_base=PEER)
    second = await client.get(
        "/xrpc/test.feed?a=1",
        headers={"X-Request-ID": "mine-2", "Origin": "https://x.example"},
        scope_base=PEER,
    )
    assert handlers.calls["feed"] == 1
    assert (await first.get_data()) == (await second.get_data())
    assert (await second.get_json())["n"] == 1
    assert len(first.headers["X-Request-ID"]) == 32
    assert second.headers["X-Request-ID"] == "mine-2"
    assert first.headers["RateLimit-Remaining"] == "99"
    assert second.headers["RateLimit-Remaining"] == "98"
    assert second.headers["Access-Control-Allow-Origin"] == "*"
    assert second.headers["Atproto-Repo-Rev"] == "rev1"  # the handler's header, kept
    third = await client.get("/xrpc/test.feed?a=1", scope_base=PEER)
    assert third.headers["X-Request-ID"] not in {
        first.headers["X-Request-ID"],
        second.headers["X-Request-ID"],
    }
    text = ctx.metrics.render().decode()
    assert 'coves_response_cache_total{result="miss"} 1.0' in text
    assert 'coves_response_cache_total{result="hit"} 2.0' in text
    assert 'coves_http_requests_total{nsid="test.feed",status="200"} 3.0' in text


async def test_hits_are_still_rate_limited(mock_clock: object) -> None:
    app, handlers, _ = cached_app(general=2)
    client = app.test_client()
    statuses = [
        (await client.get("/xrpc/test.feed", scope_base=PEER)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert handlers.calls["feed"] == 1


async def test_expiry_follows_the_trio_clock(mock_clock: trio.testing.MockClock) -> None:
    app, _handlers, _ = cached_app()
    client = app.test_client()
    await client.get("/xrpc/test.feed", scope_base=PEER)
    mock_clock.jump(0.9)
    assert (await (await client.get("/xrpc/test.feed", scope_base=PEER)).get_json())["n"] == 1
    mock_clock.jump(0.2)
    assert (await (await client.get("/xrpc/test.feed", scope_base=PEER)).get_json())["n"] == 2


async def test_ttl_is_capped_by_the_setting_and_zero_turns_it_off(
    mock_clock: trio.testing.MockClock,
) -> None:
    app, handlers, _ = cached_app(cache_seconds=10.0, setting=0.5)
    client = app.test_client()
    await client.get("/xrpc/test.feed", scope_base=PEER)
    mock_clock.jump(0.6)
    await client.get("/xrpc/test.feed", scope_base=PEER)
    assert handlers.calls["feed"] == 2

    off, off_handlers, _ = cached_app(setting=0.0)
    off_client = off.test_client()
    for _ in range(3):
        await off_client.get("/xrpc/test.feed", scope_base=PEER)
    assert off_handlers.calls["feed"] == 3


async def test_query_keys_are_canonical_and_separate(mock_clock: object) -> None:
    app, _handlers, _ = cached_app()
    client = app.test_client()

    async def n(query: str) -> int:
        response = await client.get(f"/xrpc/test.feed?{query}", scope_base=PEER)
        return int((await response.get_json())["n"])

    assert await n("a=1&b=2") == 1
    assert await n("b=2&a=1") == 1  # same parameters, other order: same entry
    assert await n("a=2&b=2") == 2
    assert await n("a=1") == 3
    assert await n("a=1&a=2") == 4
    assert await n("a=2&a=1") == 5  # repeated values keep their order
    assert await n("a=1&b=2") == 1


async def test_errors_are_not_cached(mock_clock: object) -> None:
    app, handlers, _ = cached_app()
    client = app.test_client()
    handlers.fail_next = True
    failed = await client.get("/xrpc/test.feed", scope_base=PEER)
    assert failed.status_code == 404
    ok = await client.get("/xrpc/test.feed", scope_base=PEER)
    assert ok.status_code == 200
    assert handlers.calls["feed"] == 2


async def test_authenticated_requests_are_never_cached_nor_served_from_it(
    mock_clock: object,
) -> None:
    app, handlers, _ = cached_app()
    client = app.test_client()
    anonymous = await client.get("/xrpc/test.feed", scope_base=PEER)
    assert (await anonymous.get_json())["viewer"] is None
    for _ in range(2):
        mine = await client.get(
            "/xrpc/test.feed", headers={"Authorization": "Bearer did:plc:alice"}, scope_base=PEER
        )
        assert (await mine.get_json())["viewer"] == "did:plc:alice"
    assert handlers.calls["feed"] == 3
    again = await client.get("/xrpc/test.feed", scope_base=PEER)
    assert (await again.get_json()) == (await anonymous.get_json())  # still the shared copy
    assert handlers.calls["feed"] == 3


async def test_endpoints_without_cache_seconds_are_not_cached(mock_clock: object) -> None:
    app, handlers, _ = cached_app()
    client = app.test_client()
    for _ in range(3):
        await client.get("/xrpc/test.plain", scope_base=PEER)
    assert handlers.calls["plain"] == 3


async def test_raw_responses_are_sent_but_not_cached(mock_clock: object) -> None:
    app, _handlers, _ = cached_app()
    client = app.test_client()
    for expected in (b"not json 1", b"not json 2"):
        response = await client.get("/xrpc/test.raw", scope_base=PEER)
        assert response.status_code == 202
        assert response.headers["Content-Type"] == "text/plain"
        assert response.headers["RateLimit-Remaining"]
        assert (await response.get_data()) == expected


async def test_head_is_answered_from_the_cache_without_a_body(mock_clock: object) -> None:
    app, handlers, _ = cached_app()
    client = app.test_client()
    await client.get("/xrpc/test.feed", scope_base=PEER)
    head = await client.head("/xrpc/test.feed", scope_base=PEER)
    assert head.status_code == 200
    assert (await head.get_data()) == b""
    assert handlers.calls["feed"] == 1


async def test_concurrent_requests_share_one_handler_call(autojump_clock: object) -> None:
    app, handlers, ctx = cached_app()
    client = app.test_client()
    responses: list[Any] = []

    async def call() -> None:
        responses.append(await client.get("/xrpc/test.slow", scope_base=PEER))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(call)
    assert handlers.calls["slow"] == 1
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.headers["X-Request-ID"] for r in responses}) == 8
    assert len({r.headers["RateLimit-Remaining"] for r in responses}) == 8
    text = ctx.metrics.render().decode()
    assert 'coves_response_cache_total{result="shared"} 7.0' in text


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_wrong_methods_on_cached_endpoints_are_refused(
    method: str, mock_clock: object
) -> None:
    app, handlers, _ = cached_app()
    response = await app.test_client().open("/xrpc/test.feed", method=method, scope_base=PEER)
    assert response.status_code == 400
    assert response.headers["Allow"] == "GET"
    assert "feed" not in handlers.calls
