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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import trio

from coves.clock import monotonic
from coves.db import Database
from coves.db.queries import posts as post_sql
from coves.views.blobs import BlobUrls
from coves.views.community import community_pds
from coves.views.post import PostVote, post_view, with_viewer


@dataclass(frozen=True)
class HydratedPost:
    uri: str
    community_did: str
    deleted_at: datetime | None
    # Why the post may not be shown (author or community deactivated, community
    # deleted or unverified); None when it is shown.
    unavailable: str | None
    view: dict[str, Any]
    # Posts of private communities are for subscribers only (checked per viewer
    # by callers that are not already scoped to the viewer's subscriptions).
    community_private: bool = False


def _unavailable(row: dict[str, Any]) -> str | None:
    if not row["author_active"]:
        return "author account is deactivated"
    if row["community_name"] is None:
        return "community is not known"
    if not row["community_active"] or row["community_deleted_at"] is not None:
        return "community is unavailable"
    if row["community_verification"] != "verified":
        return "community is not verified"
    return None


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
        self._inflight: dict[str, trio.Event] = {}

    def invalidate(self) -> None:
        self._cache.clear()

    def forget(self, uris: Iterable[str]) -> None:
        """Drop these posts' views: a write through Coves changed them."""
        for uri in uris:
            self._cache.pop(uri, None)

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
            event = self._inflight.get(uri)
            if event is None:
                fetch.append(uri)
                continue
            # Another request is refreshing this row: serve the recently expired
            # copy rather than queue behind it (only the refresher waits).
            hit = self._cache.get(uri)
            if hit is not None and now - hit[0] < self.stale_ttl:
                found[uri] = hit[1]
            else:
                waiting.append(event)
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
        done = trio.Event()
        for uri in uris:
            self._inflight[uri] = done
        try:
            rows = await post_sql.hydrate(self._db, uris)
            now = monotonic()
            for row in rows:
                post = self._build(row)
                found[post.uri] = post
                self._cache[post.uri] = (now, post)
            self._trim()
        finally:
            for uri in uris:
                if self._inflight.get(uri) is done:
                    del self._inflight[uri]
            done.set()

    def _build(self, row: dict[str, Any]) -> HydratedPost:
        pds = community_pds(
            {"pds_url": row["community_pds_url"], "hosted_by": row["community_hosted_by"]},
            self._instance_did,
            self._default_pds,
        )
        return HydratedPost(
            uri=row["uri"],
            community_did=row["community_did"],
            deleted_at=row["deleted_at"],
            unavailable=_unavailable(row),
            view=post_view(row, self._blobs, pds),
            community_private=row["community_visibility"] == "private",
        )

    def _trim(self) -> None:
        if len(self._cache) <= self._max_entries:
            return
        for uri in list(self._cache)[: len(self._cache) // 2]:
            del self._cache[uri]

    async def feed_views(self, uris: list[str], viewer: str | None) -> list[dict[str, Any]]:
        """Shown postViews for ``uris`` in order: live, available, not from a community
        the viewer blocks, with the viewer's vote when authenticated."""
        posts = await self.load(uris)
        blocked: set[str] = set()
        votes: dict[str, tuple[int, str]] = {}
        if viewer is not None and posts:
            blocked, votes = await post_sql.viewer_state(self._db, viewer, list(posts))
        out = []
        for uri in uris:
            post = posts.get(uri)
            if post is None or post.deleted_at is not None or post.unavailable is not None:
                continue
            if post.community_did in blocked:
                continue
            out.append(self.decorate(post, viewer, votes))
        return out

    @staticmethod
    def decorate(
        post: HydratedPost, viewer: str | None, votes: dict[str, tuple[int, str]]
    ) -> dict[str, Any]:
        if viewer is None:
            return post.view
        vote = votes.get(post.uri)
        return with_viewer(post.view, PostVote(*vote) if vote else None)
