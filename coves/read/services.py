"""The read side's long-lived state (``AppContext.read``), built once with the context.

Read functions take this and the database; they never see the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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

COMMUNITY_TTL_SECONDS = 5.0
# Staleness of a shared comment-thread build: counts and new comments show up within it;
# paging is unaffected because ranked pages read frozen snapshots.
COMMENT_THREAD_TTL_SECONDS = 2.0


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
    # Community rows by identifier, for feed requests (metadata changes rarely;
    # a feed naming a just-hidden community keeps answering for this long, or
    # up to a minute while a refresh is in flight).
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
        snapshots = SnapshotStore(db, ttl_seconds=settings.feed_snapshot_ttl_seconds)
        return cls(
            cursors=CursorCodec(settings.cursor_secret),
            snapshots=snapshots,
            first_pages=StaleWhileRefreshing(snapshots),
            posts=PostHydrator(
                db, blobs, instance_did=settings.instance_did, default_pds=settings.pds_url
            ),
            blobs=blobs,
            snapshot_size=settings.feed_snapshot_size,
            instance_did=settings.instance_did,
            instance_domain=settings.instance_domain or "",
            default_pds=settings.pds_url,
        )

    def replace_snapshots(self, store: SnapshotStore) -> None:
        """Use another snapshot store (tests and benchmarks vary its TTLs)."""
        self.snapshots = store
        self.first_pages = StaleWhileRefreshing(store)
