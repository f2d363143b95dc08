"""Hydrating post URIs into postViews, with a short-TTL cache of built views.

A feed page is a list of URIs (from a snapshot or a keyset page). Turning
them into views costs one query for the rows not cached plus one query for
the viewer's votes and blocks. Built views (without viewer state) are kept
for ``ttl`` seconds, so under load counts may lag by about that long, while
viewer state is always read fresh. When rows expire, the first request
refreshes them and concurrent requests are served the expired copy (up to
``stale_ttl`` old) instead of queueing behind that query.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import trio

from coves.clock import monotonic
from coves.db import Database, Row
from coves.db.queries import posts as post_sql
from coves.read import facts, relations, rules
from coves.read.relations import ViewerState
from coves.read.rules import PostFacts
from coves.read.views.blobs import BlobUrls
from coves.read.views.community import community_pds
from coves.read.views.post import post_view, with_viewer


@dataclass(frozen=True)
class HydratedPost:
    """A post as anyone would see it (``view``, no viewer state) and what the read
    rules need to decide whether a given viewer sees it (``facts``)."""

    facts: PostFacts
    view: dict[str, Any]

    @property
    def uri(self) -> str:
        return self.facts.uri

    @property
    def community_did(self) -> str:
        return self.facts.community.did


class PostHydrator:
    def __init__(
        self,
        db: Database,
        blobs: BlobUrls,
        *,
        instance_did: str,
        default_pds: str,
        ttl: float = 1.0,
        stale_ttl: float = 10.0,
        max_entries: int = 20_000,
    ) -> None:
        self._db = db
        self._blobs = blobs
        self._instance_did = instance_did
        self._default_pds = default_pds
        self.ttl = ttl
        self.stale_ttl = stale_ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, HydratedPost]] = {}
        # URIs being fetched right now: concurrent requests for the same page
        # wait for that one query instead of each running their own.
        self._inflight: dict[str, _Fetch] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def invalidate(self) -> None:
        """Drop every view, and keep nothing a fetch under way reads."""
        self._cache.clear()
        self._check_fetches(_everything)

    def drop(self, uris: Collection[str], actors: Collection[str] = ()) -> None:
        """Drop the views of these posts and of every post by or in these actors (a
        profile, handle, account status or community changed): the invalidation
        channel's changes (coves.changed). A fetch under way drops them too when it
        ends: it may have read the rows before the change."""
        for uri in uris:
            self._cache.pop(uri, None)
        wanted = frozenset(uris)
        people = frozenset(actors)
        if people:
            stale = [uri for uri, (_at, post) in self._cache.items() if _by(post, people)]
            for uri in stale:
                del self._cache[uri]

        def check(post: HydratedPost) -> bool:
            return post.uri in wanted or _by(post, people)

        if wanted or people:
            self._check_fetches(check)

    def _check_fetches(self, check: Callable[[HydratedPost], bool]) -> None:
        for fetch in set(self._inflight.values()):
            fetch.checks.append(check)

    async def load(self, uris: list[str], *, fresh: bool = False) -> dict[str, HydratedPost]:
        """Hydrated posts by URI (missing URIs are absent), one query for cache misses.

        ``fresh`` skips the cache (still refreshing it): for permalinks, where
        a just-deleted post must not be shown from a cached row.
        """
        found: dict[str, HydratedPost] = {}
        if fresh:
            await self._fetch(list(uris), found)
            return found
        missing = self._from_cache(uris, found)
        waiting: list[trio.Event] = []
        fetch: list[str] = []
        now = monotonic()
        for uri in missing:
            inflight = self._inflight.get(uri)
            if inflight is None:
                fetch.append(uri)
                continue
            # Another request is refreshing this row: serve the recently expired
            # copy rather than queue behind it (only the refresher waits).
            hit = self._cache.get(uri)
            if hit is not None and now - hit[0] < self.stale_ttl:
                found[uri] = hit[1]
            else:
                waiting.append(inflight.done)
        if fetch:
            await self._fetch(fetch, found)
        if waiting:
            for event in waiting:
                await event.wait()
            # Whatever the other request did not leave in the cache (it failed,
            # or the rows do not exist) is looked up here once more.
            retry = self._from_cache([u for u in missing if u not in found], found)
            if retry:
                await self._fetch(retry, found)
        return found

    async def load_with_viewer(
        self, uris: list[str], viewer: str, *, fresh: bool = False
    ) -> tuple[dict[str, HydratedPost], ViewerState]:
        """:meth:`load` and the viewer's relations to the page, in one thread hop when no
        other request is fetching any of these posts (else two, as :func:`shown_views`
        for an anonymous viewer plus :func:`relations.load`)."""
        found: dict[str, HydratedPost] = {}
        missing = list(uris) if fresh else self._from_cache(uris, found)
        if not fresh and any(uri in self._inflight for uri in missing):
            posts = await self.load(uris)
            page = [posts[uri] for uri in uris if uri in posts]
            return posts, await relations.load(self._db, viewer, **page_relations(page))
        cached = [found[uri] for uri in uris if uri in found]

        def relations_of(rows: list[Row]) -> tuple[list[str], list[str], list[str]]:
            asked = relations.asked(
                viewer,
                [p.community_did for p in cached] + [r["community_did"] for r in rows],
                [p.facts.author.did for p in cached] + [r["author_did"] for r in rows],
                [p.uri for p in cached] + [r["uri"] for r in rows],
            )
            return asked["communities"], asked["actors"], asked["subjects"]

        fetch = self._claim(missing)
        try:
            rows, row = await post_sql.hydrate_with_relations(
                self._db, missing, viewer, relations_of
            )
            self._store(rows, found, fetch)
        finally:
            self._release(missing, fetch)
        return found, relations.from_row(viewer, row)

    def _claim(self, uris: list[str]) -> _Fetch:
        fetch = _Fetch()
        for uri in uris:
            self._inflight[uri] = fetch
        return fetch

    def _release(self, uris: list[str], fetch: _Fetch) -> None:
        for uri in uris:
            if self._inflight.get(uri) is fetch:
                del self._inflight[uri]
        fetch.done.set()

    def _store(self, rows: list[Row], found: dict[str, HydratedPost], fetch: _Fetch) -> None:
        """Build the rows' views for this request; cache those no change dropped while
        the rows were being read (they may predate it)."""
        now = monotonic()
        for row in rows:
            post = self._build(row)
            found[post.uri] = post
            if not any(check(post) for check in fetch.checks):
                self._cache[post.uri] = (now, post)
        self._trim()

    def _from_cache(self, uris: list[str], found: dict[str, HydratedPost]) -> list[str]:
        now = monotonic()
        missing = []
        for uri in uris:
            hit = self._cache.get(uri)
            if hit is not None and now - hit[0] < self.ttl:
                found[uri] = hit[1]
            else:
                missing.append(uri)
        return missing

    async def _fetch(self, uris: list[str], found: dict[str, HydratedPost]) -> None:
        fetch = self._claim(uris)
        try:
            self._store(await post_sql.hydrate(self._db, uris), found, fetch)
        finally:
            self._release(uris, fetch)

    def _build(self, row: Row) -> HydratedPost:
        pds = community_pds(
            {"pds_url": row["community_pds_url"], "hosted_by": row["community_hosted_by"]},
            self._instance_did,
            self._default_pds,
        )
        return HydratedPost(facts.post(row), post_view(row, self._blobs, pds))

    def _trim(self) -> None:
        if len(self._cache) <= self._max_entries:
            return
        for uri in list(self._cache)[: len(self._cache) // 2]:
            del self._cache[uri]


class _Fetch:
    """One hydration query under way: its waiters, and the drops that happened meanwhile."""

    __slots__ = ("checks", "done")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.checks: list[Callable[[HydratedPost], bool]] = []


def _everything(_post: HydratedPost) -> bool:
    return True


def _by(post: HydratedPost, actors: frozenset[str]) -> bool:
    """Whether the post's view shows one of ``actors`` (as its author or community)."""
    return bool(actors) and (post.facts.author.did in actors or post.community_did in actors)


def page_relations(posts: Iterable[HydratedPost]) -> dict[str, list[str]]:
    """What :func:`coves.read.relations.load` must ask about a page of posts."""
    shown = list(posts)
    return {
        "communities": [p.community_did for p in shown],
        "actors": [p.facts.author.did for p in shown],
        "subjects": [p.uri for p in shown],
    }


def present(post: HydratedPost, state: ViewerState) -> dict[str, Any]:
    """The postView a viewer gets: the shared view plus their vote and membership."""
    viewer = state.relations.viewer
    if viewer is None:
        return post.view
    return with_viewer(
        post.view,
        state.votes.get(post.uri),
        subscribed=post.community_did in state.relations.member_of,
    )


async def shown_views(
    hydrator: PostHydrator, db: Database, uris: list[str], viewer: str | None
) -> list[dict[str, Any]]:
    """The tail of every post listing: hydrate the skeleton's URIs, load the viewer's
    relations to them, keep what the rules show, and build the views, in order."""
    if viewer is None:
        posts, state = await hydrator.load(uris), relations.NOBODY
    else:
        posts, state = await hydrator.load_with_viewer(uris, viewer)
    page = [posts[uri] for uri in uris if uri in posts]
    return [present(p, state) for p in page if rules.may_see_post(p.facts, state.relations) is None]
