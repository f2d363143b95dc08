"""A minimal postView for getComments until the read API's builder lands.

The read-API workstream owns postView (``coves/views/post.py``). getComments
reaches the post only through a :data:`PostLoader`, and this module is the
default one; swapping in the shared builder is a one-line change in
``coves/xrpc/routes/comments.py``. Hidden posts (deleted, or in a deleted or
rejected community) load as None, which the endpoint turns into 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from coves.atproto.syntax import format_datetime
from coves.auth.base import Viewer
from coves.db.queries import comments as comment_sql
from coves.views.comment import BlobUrl, author_view, blob_cid, make_blob_url
from coves.xrpc.context import AppContext

PostLoader = Callable[[AppContext, str, Viewer | None], Awaitable[dict[str, Any] | None]]


async def load_post_view(ctx: AppContext, uri: str, viewer: Viewer | None) -> dict[str, Any] | None:
    row = await comment_sql.fetch_thread_post(ctx.db, uri)
    if row is None or row["deleted_at"] is not None:
        return None
    if row["community_deleted_at"] is not None or row["community_verification"] == "rejected":
        return None
    return _post_view(row, viewer, make_blob_url(ctx.settings.blob_url_template))


def _post_view(row: dict[str, Any], viewer: Viewer | None, blob_url: BlobUrl) -> dict[str, Any]:
    community_did = row["community_did"]
    community: dict[str, Any] = {
        "did": community_did,
        "handle": row["community_handle"] or "handle.invalid",
        "name": row["community_display_name"]
        or row["community_name"]
        or row["community_handle"]
        or community_did,
    }
    avatar_cid = blob_cid(row["community_avatar"])
    if avatar_cid is not None:
        url = blob_url(row["community_pds_url"], community_did, avatar_cid)
        if url is not None:
            community["avatar"] = url
    view: dict[str, Any] = {
        "uri": row["uri"],
        "cid": row["cid"],
        "rkey": row["rkey"],
        "author": author_view(
            row["author_did"],
            handle=row["author_handle"],
            display_name=row["author_display_name"],
            avatar=row["author_avatar"],
            pds_url=row["author_pds_url"],
            blob_url=blob_url,
        ),
        "record": row["record"],
        "community": community,
        "createdAt": format_datetime(row["created_at"]),
        "indexedAt": format_datetime(row["indexed_at"]),
        "stats": {
            "upvotes": row["upvote_count"],
            "downvotes": row["downvote_count"],
            "score": row["score"],
            "commentCount": row["comment_count"],
        },
    }
    if row["title"]:
        view["title"] = row["title"]
    if row["content"]:
        view["text"] = row["content"]
    if row["facets"]:
        view["textFacets"] = row["facets"]
    if row["embed"]:
        view["embed"] = row["embed"]
    if row["edited_at"] is not None:
        view["editedAt"] = format_datetime(row["edited_at"])
    if viewer is not None:
        view["viewer"] = {}
    return view
