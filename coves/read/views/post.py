"""postView: the one builder for posts in feeds, post.get and (via the
comments workstream) the root of a thread.

The view without viewer state is cacheable (it depends only on the stored
rows); :func:`with_viewer` adds the caller's vote per request. Comment
concerns stay out of this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coves.atproto.syntax import INVALID_HANDLE, format_datetime
from coves.read.views.author import author_view
from coves.read.views.blobs import BlobUrls
from coves.read.views.embed import embed_view

if TYPE_CHECKING:
    from coves.read.relations import Vote

# post.get's live entries name this type: the clients discriminate its union on it.
POST_GET_VIEW = "social.coves.community.post.get#postView"


def post_view(row: dict[str, Any], blobs: BlobUrls, community_pds: str | None) -> dict[str, Any]:
    """Build a postView from a hydration row (see ``coves.db.queries.posts``)."""
    community_did = row["community_did"]
    author = author_view(
        blobs,
        row["author_did"],
        handle=row.get("author_handle"),
        display_name=row.get("author_display_name"),
        avatar=row.get("author_avatar"),
        pds=row.get("author_pds_url"),
    )
    community: dict[str, Any] = {
        "did": community_did,
        "handle": row.get("community_handle") or INVALID_HANDLE,
        "name": row.get("community_name") or row.get("community_handle") or community_did,
    }
    if row.get("community_display_name"):
        community["displayName"] = row["community_display_name"]
    avatar = row.get("community_avatar")
    avatar_url = blobs.url(avatar, community_did, community_pds, "avatar") if avatar else None
    if avatar_url:
        community["avatar"] = avatar_url
    view: dict[str, Any] = {
        "uri": row["uri"],
        "cid": row["cid"],
        "rkey": row["rkey"],
        "author": author,
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
    if row.get("title") is not None:
        view["title"] = row["title"]
    if row.get("content") is not None:
        view["text"] = row["content"]
    if row.get("facets"):
        view["textFacets"] = row["facets"]
    embed = embed_view(row.get("embed"), blobs, community_did, community_pds)
    if embed is not None:
        view["embed"] = embed
    if row.get("labels"):
        view["labels"] = row["labels"]
    if row.get("edited_at") is not None:
        view["editedAt"] = format_datetime(row["edited_at"])
    return view


def with_viewer(
    view: dict[str, Any], vote: Vote | None, *, subscribed: bool | None = None
) -> dict[str, Any]:
    """A shallow copy of ``view`` carrying the caller's vote (``viewer`` is empty when
    there is none) and, when known, whether they subscribe to the post's community."""
    viewer: dict[str, Any] = {}
    if vote is not None:
        viewer["vote"] = "up" if vote.direction > 0 else "down"
        viewer["voteUri"] = vote.uri
    out = {**view, "viewer": viewer}
    if subscribed is not None:
        out["community"] = {**view["community"], "viewer": {"subscribed": subscribed}}
    return out
