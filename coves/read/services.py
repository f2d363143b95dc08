"""The read side's long-lived state (``AppContext.read``), built once with the context.

Read functions take this and the database; they never see the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coves.changed import Changed
from coves.config import Settings
from coves.cursors import CursorCodec
from coves.db import Database, Row
from coves.read.posts import PostHydrator
from coves.read.snapshots import SnapshotStore, StaleWhileRefreshing
from coves.read.views.blobs import BlobUrls
from coves.ttlcache import TTLCache

if TYPE_CHECKING:
    from coves.read.comments.params import ThreadParams
    from coves.read.comments.thread import SharedThread

# Built views are dropped the moment what they show changes, in every process (the
# invalidation channel: coves.invalidation, drop_changed below); the TTLs bound what
# a process serves only while its listener is reconnecting, and set how long an
# unchanged entry is reused (READ_CACHE_SECONDS). Listing snapshots are not among
# these: they freeze the order of a hot/top listing on purpose (coves.read.snapshots).
READ_CACHE_SECONDS = 2.0


@dataclass
class ReadServices:
    """Long-lived read-path state shared by every request of one app."""

    cursors: CursorCodec
    snapshots: SnapshotStore
    # First pages keep being served from the previous snapshot while one recomputes.
    first_pages: StaleWhileRefreshing
    posts: PostHydrator
    blobs: BlobUrls
    snapshot_size: int
    instance_did: str
    instance_domain: str
    default_pds: str
    # Community rows by identifier, for feed requests (resolving the name and the
    # read rules on every page would cost a query each).
    communities: TTLCache[str, Row | None] = field(
        default_factory=lambda: TTLCache(READ_CACHE_SECONDS, stale_ttl=60.0)
    )
    # getComments: a popular thread is read by many clients at once and building it
    # is the expensive part, so identical requests share one build.
    comment_threads: TTLCache[ThreadParams, SharedThread] = field(
        default_factory=lambda: TTLCache(READ_CACHE_SECONDS, max_entries=128)
    )

    @classmethod
    def build(cls, settings: Settings, db: Database) -> ReadServices:
        blobs = BlobUrls(settings.blob_url_template)
        snapshots = SnapshotStore(db, ttl_seconds=settings.feed_snapshot_ttl_seconds)
        ttl = settings.read_cache_seconds
        return cls(
            cursors=CursorCodec(settings.cursor_secret),
            snapshots=snapshots,
            first_pages=StaleWhileRefreshing(snapshots),
            posts=PostHydrator(
                db,
                blobs,
                instance_did=settings.instance_did,
                default_pds=settings.pds_url,
                ttl=ttl,
                stale_ttl=max(ttl, 10.0),
            ),
            blobs=blobs,
            snapshot_size=settings.feed_snapshot_size,
            instance_did=settings.instance_did,
            instance_domain=settings.instance_domain or "",
            default_pds=settings.pds_url,
            communities=TTLCache(ttl, stale_ttl=max(ttl, 60.0)),
            comment_threads=TTLCache(ttl, max_entries=128),
        )

    # -- the invalidation channel's side (coves.invalidation.BuiltViews) -----------------
    def drop_changed(self, changed: Changed) -> None:
        """Drop every built view ``changed`` makes stale: post views of the posts and
        of everything by or in the actors; thread builds under the posts or showing
        the comments or actors; community lookups of the actors."""
        posts, comments, actors = changed.posts, changed.comments, changed.actors
        self.posts.drop(posts, actors)

        def thread_stale(params: ThreadParams, shared: SharedThread) -> bool:
            return params.post in posts or shared.shows(comments, actors)

        self.comment_threads.discard(thread_stale)
        if actors:

            def community_stale(_key: str, row: Row | None) -> bool:
                return row is not None and row["did"] in actors

            self.communities.discard(community_stale)

    def sizes(self) -> dict[str, int]:
        """Entries held (each process's heartbeat shows them)."""
        return {
            "posts": len(self.posts),
            "threads": len(self.comment_threads),
            "communities": len(self.communities),
        }

    def drop_all(self) -> None:
        """Changes may have been missed (the listener reconnected): drop every built view."""
        self.posts.invalidate()
        self.comment_threads.clear()
        self.communities.clear()

    def replace_snapshots(self, store: SnapshotStore) -> None:
        """Use another snapshot store (tests and benchmarks vary its TTLs)."""
        self.snapshots = store
        self.first_pages = StaleWhileRefreshing(store)
