"""Cache invalidation across processes: the payloads, the bus and the LISTEN connection."""

from __future__ import annotations

import trio

from coves.changed import Changed
from coves.context import AppContext
from coves.db import Database
from coves.invalidation import CHANNEL, Invalidation, chunks
from coves.respcache import CachedResponse, ResponseCache
from nurseries.invalidation import InvalidationListener

ALICE = "did:plc:aliceaaaaaaaaaaaaaaaaaaa"
BOB = "did:plc:bobbbbbbbbbbbbbbbbbbbbbb"
POST_URI = f"at://{ALICE}/social.coves.community.post/3kpost"
COMMENT_URI = f"at://{BOB}/social.coves.community.comment/3kcomment"


class FakeViews:
    def __init__(self) -> None:
        self.dropped: list[Changed] = []
        self.all = 0

    def drop_changed(self, changed: Changed) -> None:
        self.dropped.append(changed)

    def drop_all(self) -> None:
        self.all += 1


class FakeIdentity:
    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.cleared = 0

    def forget_local(self, did: str) -> None:
        self.forgotten.append(did)

    def clear_local(self) -> None:
        self.cleared += 1


async def cache_for(cache: ResponseCache, did: str) -> None:
    async def compute() -> CachedResponse:
        return CachedResponse(b"{}")

    await cache.get(("timeline", did), 60.0, compute, tag=did)


def test_payloads_are_split_under_the_limit_and_keep_every_item() -> None:
    items = [f"did:plc:{i:024d}" for i in range(1000)]
    payloads = list(chunks("origin repo", items, limit=500))
    assert all(len(p.encode()) < 500 for p in payloads)
    assert len(payloads) > 1
    got = [d for p in payloads for d in p.split()[2:]]
    assert got == items
    assert all(p.startswith("origin repo ") for p in payloads)


async def test_changes_apply_here_and_are_published_for_the_others() -> None:
    cache = ResponseCache()
    identity = FakeIdentity()
    sent: list[list[str]] = []

    async def publish(payloads: object) -> None:
        sent.append(list(payloads))  # type: ignore[call-overload]

    bus = Invalidation(cache, identity, publish, origin="me")
    await cache_for(cache, ALICE)
    await cache_for(cache, BOB)
    await bus.changed(Changed.of(repos=[ALICE, ALICE]))
    assert len(cache) == 1  # Bob's entry stays
    await bus.changed(Changed.of(identities=[BOB]))
    assert identity.forgotten == [BOB]
    await bus.changed(Changed())  # nothing changed: nothing sent
    assert sent == [[f"me repo {ALICE}"], [f"me identity {BOB}"]]
    await bus.changed(Changed.of(posts=[POST_URI], comments=[COMMENT_URI], actors=[BOB]))
    assert sent[-1] == [f"me post {POST_URI}", f"me comment {COMMENT_URI}", f"me actor {BOB}"]
    assert bus.published == 5  # one per notification sent


async def test_a_publishing_failure_is_not_the_callers_problem(db: Database) -> None:
    offline = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    cache = ResponseCache()
    bus = Invalidation.on_database(offline, cache)
    await cache_for(cache, ALICE)
    await bus.changed(Changed.of(repos=[ALICE]))  # logged, not raised
    assert len(cache) == 0
    assert bus.published == 0  # nothing reached the channel


async def test_deliveries_from_others_apply_and_our_own_are_ignored() -> None:
    cache = ResponseCache()
    identity = FakeIdentity()
    views = FakeViews()
    bus = Invalidation(cache, identity, views=views, origin="me")
    await cache_for(cache, ALICE)
    bus.deliver(f"me repo {ALICE}")
    assert len(cache) == 1 and bus.received == 0
    bus.deliver(f"other repo {ALICE} {BOB}")
    assert len(cache) == 0 and bus.received == 1
    bus.deliver(f"other identity {BOB}")
    assert identity.forgotten == [BOB]
    bus.deliver("other nonsense x")  # unknown kinds are ignored
    assert bus.received == 2
    assert views.dropped == []  # neither repos nor identities make built views stale
    bus.deliver(f"other post {POST_URI}")
    bus.deliver(f"other comment {COMMENT_URI}")
    bus.deliver(f"other actor {ALICE} {BOB}")
    assert views.dropped == [
        Changed.of(posts=[POST_URI]),
        Changed.of(comments=[COMMENT_URI]),
        Changed.of(actors=[ALICE, BOB]),
    ]
    await cache_for(cache, BOB)
    bus.on_gap()
    assert len(cache) == 0 and identity.cleared == 1 and bus.gaps == 1 and views.all == 1


async def test_the_listener_delivers_notifications_and_recovers_a_lost_connection(
    ctx: AppContext,
) -> None:
    db = ctx.db
    cache = ResponseCache()
    bus = Invalidation(cache, origin="listener")
    listener = InvalidationListener(db.conninfo, bus, poll=0.2)
    publisher = Invalidation.on_database(db, ResponseCache(), origin="publisher")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(listener.run)
            assert listener.connected and listener.connections == 1
            await cache_for(cache, ALICE)
            await publisher.changed(Changed.of(repos=[ALICE]))
            while len(cache):
                await trio.sleep(0.05)
            assert bus.received == 1 and bus.gaps == 0

            # The server drops the listening connection: it comes back, and
            # what was cached meanwhile is dropped (notifications were missed).
            await cache_for(cache, BOB)
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'coves-listen' AND datname = current_database()"
            )
            while listener.connections < 2 or not listener.connected:
                await trio.sleep(0.05)
            assert bus.gaps == 1 and len(cache) == 0
            await cache_for(cache, ALICE)
            await db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"publisher repo {ALICE}"))
            while len(cache):
                await trio.sleep(0.05)
            assert listener.details()["received"] == 2
            nursery.cancel_scope.cancel()
