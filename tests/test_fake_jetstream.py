"""The fake Jetstream honours the v1 wire contract the consumer relies on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trio_websocket

from nurseries.jetstream import websocket_opener
from tests.support.fake_jetstream import FakeJetstream

VOTE = "social.coves.feed.vote"
POST = "social.coves.community.post"
US = 1_000_000
dial = websocket_opener(max_message_bytes=8 * 1024 * 1024, connect_timeout=5.0)


@asynccontextmanager
async def tcp_fake(fake: FakeJetstream) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(fake.serve)
        yield url
        nursery.cancel_scope.cancel()


async def receive(ws: trio_websocket.WebSocketConnection, n: int) -> list[dict[str, object]]:
    return [json.loads(await ws.get_message()) for _ in range(n)]


async def expect_nothing(ws: trio_websocket.WebSocketConnection, seconds: float = 0.2) -> None:
    with trio.move_on_after(seconds) as scope:
        message = await ws.get_message()
        raise AssertionError(f"unexpected frame {message!r}")
    assert scope.cancelled_caught


async def test_tcp_live_tail_filters_commits_but_not_identity_or_account() -> None:
    fake = FakeJetstream()
    fake.commit("did:plc:a", VOTE, "before")  # published before connect: not replayed
    with trio.fail_after(10):
        async with tcp_fake(fake) as url:
            assert url.startswith("ws://127.0.0.1:")
            async with dial(f"{url}?wantedCollections={VOTE}") as ws:
                await fake.wait_for_connections(1)
                fake.commit("did:plc:a", POST, "p")  # not wanted
                vote = fake.commit("did:plc:a", VOTE, "v")
                ident = fake.identity("did:plc:a", "alice.test")
                acct = fake.account("did:plc:a", active=False, status="deactivated")
                got = await receive(ws, 3)
                await expect_nothing(ws)
    assert got == [vote, ident, acct]
    assert got[0]["kind"] == "commit" and set(got[0]) == {"did", "time_us", "kind", "commit"}
    assert got[2]["account"] == {
        "active": False,
        "did": "did:plc:a",
        "seq": 5,
        "time": "2026-01-01T00:00:00Z",
        "status": "deactivated",
    }
    assert fake.requests[0].wanted_collections == (VOTE,)
    assert fake.requests[0].cursor is None


async def test_cursor_replays_from_time_us_inclusive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream()
    events = [fake.commit("did:plc:a", VOTE, f"r{i}") for i in range(4)]
    with trio.fail_after(10):
        async with fake.running():
            cursor = events[1]["time_us"]
            async with fake.opener()(f"ws://x/subscribe?cursor={cursor}") as ws:
                assert await receive(ws, 3) == events[1:]
                await expect_nothing(ws)


async def test_wildcard_collections_and_delete_shape(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream()
    keep = fake.commit("did:plc:a", VOTE, "r", operation="delete")
    fake.commit("did:plc:a", "app.bsky.feed.like", "x")
    with trio.fail_after(10):
        async with (
            fake.running(),
            fake.opener()("ws://x/subscribe?wantedCollections=social.coves.*&cursor=1") as ws,
        ):
            [got] = await receive(ws, 1)
            await expect_nothing(ws)
    assert got == keep
    assert "record" not in got["commit"] and "cid" not in got["commit"]  # type: ignore[operator]


async def test_old_cursor_is_clamped_to_the_window_silently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream(window_seconds=3600)
    now = fake.now_us()
    fake.commit("did:plc:a", VOTE, "gone", time_us=now - 2 * 3600 * US)
    kept = fake.commit("did:plc:a", VOTE, "kept", time_us=now - 1800 * US)
    with trio.fail_after(10):
        async with (
            fake.running(),
            fake.opener()(f"ws://x/subscribe?cursor={now - 3 * 3600 * US}") as ws,
        ):
            assert await receive(ws, 1) == [kept]


async def test_future_cursor_means_live_tail(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeJetstream()
    fake.commit("did:plc:a", VOTE, "old")
    with trio.fail_after(10):
        async with (
            fake.running(),
            fake.opener()(f"ws://x/subscribe?cursor={fake.now_us() + 3600 * US}") as ws,
        ):
            await fake.wait_for_connections(1)
            new = fake.commit("did:plc:a", VOTE, "new")
            assert await receive(ws, 1) == [new]


def test_time_us_must_increase() -> None:
    fake = FakeJetstream()
    fake.commit("did:plc:a", VOTE, "a", time_us=100)
    with pytest.raises(ValueError):
        fake.commit("did:plc:a", VOTE, "b", time_us=100)


async def test_refuse_with_503_at_handshake() -> None:
    fake = FakeJetstream()
    fake.refuse(503)
    with trio.fail_after(10):
        async with tcp_fake(fake) as url:
            with pytest.raises(trio_websocket.ConnectionRejected) as caught:
                async with dial(url):
                    pass
            fake.refuse(None)
            async with dial(url):
                await fake.wait_for_connections(1)
    assert caught.value.status_code == 503
    assert len(fake.requests) == 2


@pytest.mark.parametrize(("abnormal", "code"), [(False, 1000), (False, 1011), (True, 1006)])
async def test_drop_closes_with_the_requested_code(abnormal: bool, code: int) -> None:
    fake = FakeJetstream()
    with trio.fail_after(10):
        async with tcp_fake(fake) as url, dial(url) as ws:
            await fake.wait_for_connections(1)
            assert await fake.drop(abnormal=abnormal, code=code) == 1
            with pytest.raises(trio_websocket.ConnectionClosed) as caught:
                await ws.get_message()
    assert caught.value.reason is not None
    assert caught.value.reason.code == code


async def test_silent_connection_still_answers_pings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeJetstream()
    with trio.fail_after(10):
        async with fake.running(), fake.opener()("ws://x/subscribe") as ws:
            await fake.wait_for_connections(1)
            fake.go_silent()
            fake.commit("did:plc:a", VOTE, "held")
            await expect_nothing(ws, 5.0)
            await ws.ping(b"still there?")
    assert fake.accepted == 1


async def test_ignored_pings_go_unanswered(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeJetstream()
    with trio.fail_after(30):
        async with fake.running(), fake.opener()("ws://x/subscribe") as ws:
            await fake.wait_for_connections(1)
            fake.stop_answering_pings()
            with trio.move_on_after(10) as scope:
                await ws.ping(b"hello")
            assert scope.cancelled_caught
            new = fake.commit("did:plc:a", VOTE, "still-sending")
            assert await receive(ws, 1) == [new]
            assert fake.live[0].pings == 1


async def test_large_frames_pass_a_raised_client_limit() -> None:
    fake = FakeJetstream()
    big = {"$type": VOTE, "blob": "x" * (6 * 1024 * 1024)}
    with trio.fail_after(20):
        async with (
            tcp_fake(fake) as url,
            dial(url) as ws,
        ):
            await fake.wait_for_connections(1)
            event = fake.commit("did:plc:a", VOTE, "big", record=big)
            [got] = await receive(ws, 1)
    assert got == event
