"""Read-your-writes for the read path's short-lived caches.

The index is current the moment a write through Coves returns (the write
path indexes it), but two read caches could still serve the thread or post
as it was for a second or two: built post views (feeds) and shared thread
builds (getComments). A write drops the affected post's entries from both.
The response micro-caches need nothing here: the writer's own cached reads
are dropped by the indexer's repo hook, and anonymous readers are not the
writer.
"""

from __future__ import annotations

from coves.read.comments.params import ThreadParams
from coves.read.services import ReadServices


def show_at_once(read: ReadServices, *post_uris: str) -> None:
    posts = set(post_uris)
    read.posts.forget(posts)

    def stale(params: ThreadParams) -> bool:
        return params.post in posts

    read.comment_threads.discard(stale)
