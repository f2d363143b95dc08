"""PostHydrator: one query per page of misses, shared by concurrent requests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing

from coves.read import posts as postcache
from coves.read.posts import PostHydrator
from coves.read.views.blobs import BlobUrls

T = datetime(2026, 1, 1, tzinfo=UTC)


def row(uri: str) -> dict[str, Any]:
    return {
        "uri": uri, "cid": "bafyreipost", "rkey": uri.rsplit("/", 1)[1],
        "community_did": "did:plc:c", "author_did": "did:plc:a", "title": "t",
        "content": "x", "facets": None, "embed": None, "labels": None, "record": {},
        "created_at": T, "indexed_at": T, "edited_at": None, "deleted_at": None,
        "upvote_count": 0, "downvote_count": 0, "score": 0, "comment_count": 0,
        "author_handle": "a.test", "author_display_name": None, "author_avatar": None,
        "author_pds_url": None, "author_active": True, "author_status": None,
        "community_known": True, "community_created_by": "did:plc:creator",
        "community_account_known": True, "community_status": None, "community_name": "c",
        "community_display_name": None, "community_avatar": None,
        "community_hosted_by": "did:web:localhost", "community_visibility": "public",
        "community_verification": "verified", "community_deleted_at": None,
        "community_handle": "c.community.localhost", "community_pds_url": None,
        "community_active": True,
    }  # fmt: skip


class FakeHydrate:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail = False

    async def __call__(self, db: object, uris: list[str]) -> list[dict[str, Any]]:
        self.calls.append(list(uris))
        fail = self.fail
        await trio.sleep(0.5)
        if fail:
            raise RuntimeError("database went away")
        return [row(u) for u in uris if not u.endswith("missing")]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeHydrate:
    fake = FakeHydrate()
    monkeypatch.setattr(postcache.post_sql, "hydrate", fake)
    return fake


def hydrator() -> PostHydrator:
    blobs = BlobUrls("{pds}/b?did={did}&cid={cid}")
    return PostHydrator(
        None,  # type: ignore[arg-type]
        blobs,
        instance_did="did:web:localhost",
        default_pds="http://pds",
        ttl=1.0,
    )


URIS = [f"at://did:plc:c/social.coves.community.post/{k}" for k in ("a", "b", "c")]


async def test_concurrent_misses_share_one_query(
    fake: FakeHydrate, autojump_clock: trio.testing.MockClock
) -> None:
    h = hydrator()
    results: list[dict[str, Any]] = []

    async def one() -> None:
        results.append(await h.load(URIS))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(one)
    assert fake.calls == [URIS]
    assert all(sorted(r) == sorted(URIS) for r in results)
    await h.load(URIS)  # fresh: no query
    assert len(fake.calls) == 1
    await trio.sleep(1.1)  # expired: queried again
    await h.load(URIS)
    assert len(fake.calls) == 2


async def test_missing_rows_are_absent_and_not_cached(
    fake: FakeHydrate, autojump_clock: trio.testing.MockClock
) -> None:
    h = hydrator()
    uri = "at://did:plc:c/social.coves.community.post/missing"
    assert await h.load([uri, URIS[0]]) == {URIS[0]: (await h.load([URIS[0]]))[URIS[0]]}
    await h.load([uri])
    assert fake.calls[-1] == [uri]


async def test_waiters_retry_when_the_shared_query_fails(
    fake: FakeHydrate, autojump_clock: trio.testing.MockClock
) -> None:
    h = hydrator()
    fake.fail = True
    outcomes: list[str] = []

    async def first() -> None:
        try:
            await h.load(URIS)
        except RuntimeError:
            outcomes.append("failed")

    async def second() -> None:
        await trio.sleep(0.1)
        fake.fail = False  # the database is back for the retry
        outcomes.append(f"loaded {len(await h.load(URIS))}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(second)
    assert sorted(outcomes) == ["failed", "loaded 3"]
    assert fake.calls == [URIS, URIS]


async def test_expired_rows_are_served_stale_while_one_request_refreshes(
    fake: FakeHydrate, autojump_clock: trio.testing.MockClock
) -> None:
    h = hydrator()
    await h.load(URIS)
    await trio.sleep(1.5)  # expired, but within stale_ttl
    waited: dict[str, float] = {}

    async def timed(name: str, delay: float) -> None:
        await trio.sleep(delay)
        started = trio.current_time()
        await h.load(URIS)
        waited[name] = trio.current_time() - started

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timed, "refresher", 0.0)
        nursery.start_soon(timed, "reader", 0.1)
    assert waited["refresher"] == pytest.approx(0.5)  # ran the query
    assert waited["reader"] == 0  # served the stale copy at once
    assert len(fake.calls) == 2


RELATIONS_ROW = {
    "member_of": [],
    "blocked_communities": [],
    "blocking": ["did:plc:a"],
    "blocked_by": [],
    "votes": [[URIS[0], 1, "at://did:plc:v/social.coves.feed.vote/1"]],
}


async def test_a_signed_in_page_hydrates_and_relates_in_one_call(
    fake: FakeHydrate, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """The misses and the viewer's relations to the whole page (cached posts included)
    are asked for together: one thread hop for a signed-in page."""
    combined: list[tuple[list[str], tuple[Any, ...]]] = []

    async def hydrate_with_relations(
        db: object, uris: list[str], viewer: str, relations_of: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows = [row(u) for u in uris]
        combined.append((list(uris), relations_of(rows)))
        return rows, RELATIONS_ROW

    monkeypatch.setattr(postcache.post_sql, "hydrate_with_relations", hydrate_with_relations)
    h = hydrator()
    await h.load(URIS[:1])  # one post already cached
    posts, state = await h.load_with_viewer(URIS, "did:plc:v")
    assert set(posts) == set(URIS) and fake.calls == [URIS[:1]]
    assert combined == [
        (URIS[1:], (["did:plc:c"], ["did:plc:a"], [URIS[0], *URIS[1:]])),
    ]
    assert state.relations.blocking == {"did:plc:a"} and state.votes[URIS[0]].direction == 1
    # Every post cached: still one call, for the relations alone.
    await h.load_with_viewer(URIS, "did:plc:v")
    assert combined[1] == ([], (["did:plc:c"], ["did:plc:a"], URIS))


async def test_a_signed_in_page_waits_for_posts_another_request_is_fetching(
    fake: FakeHydrate, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    asked: list[dict[str, Any]] = []

    async def relations_sql(db: object, viewer: str, **kw: Any) -> dict[str, Any]:
        asked.append(kw)
        return RELATIONS_ROW

    monkeypatch.setattr(postcache.relations.relation_sql, "relations", relations_sql)
    h = hydrator()
    got: list[Any] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.load, URIS)
        await trio.sleep(0.1)  # that load is in flight
        got.append(await h.load_with_viewer(URIS, "did:plc:v"))
    assert fake.calls == [URIS]  # the posts were fetched once, by the other request
    assert set(got[0][0]) == set(URIS) and asked[0]["subjects"] == URIS


async def test_a_change_during_a_signed_in_fetch_keeps_its_rows_out_of_the_cache(
    fake: FakeHydrate, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """The one-hop path obeys the invalidation channel like load(): rows read before a
    drop are shown to that request but not cached for the next."""

    async def hydrate_with_relations(
        db: object, uris: list[str], viewer: str, relations_of: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        await trio.sleep(0.5)
        rows = [row(u) for u in uris]
        relations_of(rows)
        return rows, RELATIONS_ROW

    monkeypatch.setattr(postcache.post_sql, "hydrate_with_relations", hydrate_with_relations)
    h = hydrator()
    got: list[Any] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(got, h.load_with_viewer(URIS, "did:plc:v")))
        await trio.sleep(0.1)  # the combined statement is in flight
        h.drop([URIS[0]])
    assert set(got[0][0]) == set(URIS)  # this request still sees every post
    await h.load(URIS)
    assert fake.calls == [[URIS[0]]]  # only the dropped one is read again


async def _collect(into: list[Any], call: Any) -> None:
    into.append(await call)
