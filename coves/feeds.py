"""Feed paging: ranked listings from shared snapshots, ``new`` by keyset.

hot/top/controversial pages read a frozen ordering (``coves.snapshots``) by
offset, so paging never repeats or skips a post while votes move ranks; the
cursor (signed, opaque) carries the snapshot id and offset, and the listing
key is the cursor kind, so a cursor cannot be replayed on another feed,
sort, timeframe or (for timelines) another viewer. ``new`` pages by keyset on
``(ranked_at, uri)``, which new posts cannot disturb (they sort before the
cursor). One listing reaches at most ``FEED_SNAPSHOT_SIZE`` posts, like
Reddit's 1000-item listings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from coves.clock import monotonic, utcnow
from coves.config import Settings
from coves.cursors import CursorCodec, invalid_cursor
from coves.db import Database, Row
from coves.db.queries import feeds as feed_sql
from coves.db.queries.feeds import FeedScope, Sort
from coves.params import choice_param, int_param
from coves.postcache import PostHydrator
from coves.snapshots import Compute, Snapshot, SnapshotStore
from coves.ttlcache import TTLCache
from coves.views.blobs import BlobUrls

if TYPE_CHECKING:
    from coves.threads.assemble import SharedThread
    from coves.threads.params import ThreadParams

SORTS: tuple[str, ...] = ("hot", "top", "new", "controversial")
TIMEFRAMES: dict[str, timedelta | None] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
    "all": None,
}
DEFAULT_LIMIT = 15
MAX_LIMIT = 50
COMMUNITY_TTL_SECONDS = 5.0
# Staleness of a shared comment-thread build: counts and new comments show up within it;
# paging is unaffected because ranked pages read frozen snapshots.
COMMENT_THREAD_TTL_SECONDS = 2.0
EXPIRED = "this listing has expired; start again from the first page (omit cursor)"


class StaleWhileRefreshing:
    """First pages keep being served from the previous snapshot while a new one
    is computed.

    ``SnapshotStore.current`` coalesces a recomputation, but every request for
    the listing waits for it (44 ms for discover at 1M posts, far more on a busy
    machine). Here the request that triggers the recomputation waits; the others
    get the snapshot it replaces (at most ``stale_seconds`` old), whose cursors
    stay valid for the store's TTL.
    """

    def __init__(self, store: SnapshotStore, stale_seconds: float = 60.0) -> None:
        self.store = store
        self.stale_seconds = stale_seconds
        self._last: dict[str, tuple[float, Snapshot]] = {}  # key -> (first seen, snapshot)
        self._refreshing: set[str] = set()

    async def current(self, key: str, compute: Compute) -> Snapshot:
        now = monotonic()
        last = self._last.get(key)
        due = last is None or now - last[0] >= self.store.reuse_seconds
        if (
            due
            and key in self._refreshing
            and last is not None
            and (now - last[0] < self.stale_seconds)
        ):
            return last[1]
        if not due:
            return await self.store.current(key, compute)
        self._refreshing.add(key)
        try:
            snapshot = await self.store.current(key, compute)
        finally:
            self._refreshing.discard(key)
        if last is None or last[1].id != snapshot.id:
            self._last[key] = (monotonic(), snapshot)
            if len(self._last) > 4096:
                for old in list(self._last)[:2048]:
                    del self._last[old]
        return snapshot


@dataclass
class ReadServices:
    """Long-lived read-path state shared by every request of one app."""

    cursors: CursorCodec
    snapshots: SnapshotStore
    posts: PostHydrator
    blobs: BlobUrls
    snapshot_size: int
    instance_did: str
    instance_domain: str
    default_pds: str
    # Community rows by identifier, for feed requests (metadata changes rarely;
    # a feed naming a just-hidden community keeps answering for this long, or
    # up to a minute while a refresh is in flight).
    first_pages: StaleWhileRefreshing | None = None
    communities: TTLCache[str, Row | None] = field(
        default_factory=lambda: TTLCache(COMMUNITY_TTL_SECONDS, stale_ttl=60.0)
    )
    # getComments: a popular thread is read by many clients at once and building it
    # is the expensive part, so identical requests within two seconds share one build.
    comment_threads: TTLCache[ThreadParams, SharedThread] = field(
        default_factory=lambda: TTLCache(COMMENT_THREAD_TTL_SECONDS, max_entries=128)
    )

    @classmethod
    def build(cls, settings: Settings, db: Database) -> ReadServices:
        blobs = BlobUrls(settings.blob_url_template)
        return cls(
            cursors=CursorCodec(settings.cursor_secret),
            snapshots=SnapshotStore(db),
            posts=PostHydrator(
                db, blobs, instance_did=settings.instance_did, default_pds=settings.pds_url
            ),
            blobs=blobs,
            snapshot_size=settings.feed_snapshot_size,
            instance_did=settings.instance_did,
            instance_domain=settings.instance_domain or "",
            default_pds=settings.pds_url,
        )


@dataclass(frozen=True)
class FeedParams:
    sort: Sort
    timeframe: str  # "" unless sort is top
    limit: int
    cursor: str | None


def feed_params(params: Mapping[str, Any]) -> FeedParams:
    """sort/timeframe/limit/cursor shared by every feed (400 on anything invalid)."""
    sort = cast(Sort, choice_param(params, "sort", SORTS, "hot"))
    timeframe = choice_param(params, "timeframe", tuple(TIMEFRAMES), None)
    limit = int_param(params, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    cursor = params.get("cursor")
    if isinstance(cursor, list):
        cursor = cursor[0] if len(cursor) == 1 else ""
    if cursor is not None and not isinstance(cursor, str):
        raise invalid_cursor()
    return FeedParams(
        sort=sort,
        timeframe=(timeframe or "day") if sort == "top" else "",
        limit=limit,
        cursor=cursor or None,
    )


ScopeSource = Callable[[], Awaitable[FeedScope]]


def fixed(scope: FeedScope) -> ScopeSource:
    async def source() -> FeedScope:
        return scope

    return source


async def feed_page(
    svc: ReadServices,
    db: Database,
    base: str,
    scope: ScopeSource,
    fp: FeedParams,
    *,
    viewer: str | None,
) -> dict[str, Any]:
    """One page of a feed: ``{"feed": [{"post": postView}], "cursor"?}``.

    ``base`` names the listing (``kind:owner``, the owner being the community
    or author DID or the timeline's viewer); ``scope`` is only awaited when
    the database is actually read (a timeline's subscriptions are not looked
    up for pages served from a snapshot).
    """
    if fp.sort == "new":
        uris, cursor = await _new_page(svc, db, scope, base, fp)
    else:
        uris, cursor = await _ranked_page(svc, db, scope, base, fp)
    views = await svc.posts.feed_views(uris, viewer)
    body: dict[str, Any] = {"feed": [{"post": view} for view in views]}
    if cursor is not None:
        body["cursor"] = cursor
    return body


async def _new_page(
    svc: ReadServices, db: Database, scope: ScopeSource, base: str, fp: FeedParams
) -> tuple[list[str], str | None]:
    kind = f"new:{base}"
    after: tuple[datetime, str] | None = None
    if fp.cursor is not None:
        payload = svc.cursors.decode(kind, fp.cursor)
        t, u = payload.get("t"), payload.get("u")
        if not isinstance(t, str) or not isinstance(u, str):
            raise invalid_cursor()
        try:
            after = (datetime.fromisoformat(t), u)
        except ValueError:
            raise invalid_cursor() from None
    rows = await feed_sql.new_page(db, await scope(), fp.limit + 1, after)
    more = len(rows) > fp.limit
    rows = rows[: fp.limit]
    cursor = None
    if more and rows:
        last_uri, last_at = rows[-1]
        cursor = svc.cursors.encode(kind, {"t": last_at.astimezone(UTC).isoformat(), "u": last_uri})
    return [uri for uri, _ in rows], cursor


async def _ranked_page(
    svc: ReadServices, db: Database, scope: ScopeSource, base: str, fp: FeedParams
) -> tuple[list[str], str | None]:
    key = f"{base}:{fp.sort}:{fp.timeframe}"
    kind = f"snap:{key}"
    if fp.cursor is not None:
        payload = svc.cursors.decode(kind, fp.cursor)
        snapshot_id, offset = payload.get("s"), payload.get("o")
        if not isinstance(snapshot_id, str) or type(offset) is not int or offset < 0:
            raise invalid_cursor()
        snapshot = await svc.snapshots.load(snapshot_id)
        if snapshot is None:
            raise invalid_cursor(EXPIRED)
        if snapshot.key != key:
            raise invalid_cursor("cursor belongs to a different listing")
    else:
        offset = 0
        window = TIMEFRAMES.get(fp.timeframe) if fp.sort == "top" else None
        since = utcnow() - window if window is not None else None

        async def compute() -> list[str]:
            return await feed_sql.ranked_uris(db, await scope(), fp.sort, svc.snapshot_size, since)

        if svc.first_pages is None or svc.first_pages.store is not svc.snapshots:
            svc.first_pages = StaleWhileRefreshing(svc.snapshots)
        snapshot = await svc.first_pages.current(key, compute)
    end = offset + fp.limit
    uris = list(snapshot.items[offset:end])
    cursor = None
    if end < len(snapshot.items):
        cursor = svc.cursors.encode(kind, {"s": snapshot.id, "o": end})
    return uris, cursor
