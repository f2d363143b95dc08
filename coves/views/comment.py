"""commentView and threadViewComment: the only place they are assembled.

Placeholders. A deleted comment keeps its position so the replies under it
stay reachable, and so does a comment whose author's account is inactive
(deactivated, suspended, taken down). Both render as a placeholder
commentView: ``uri``, ``cid``, ``post``, ``parent``, ``createdAt``,
``indexedAt``, ``stats`` and ``isDeleted: true`` with ``deletionReason``
(``"author"`` when the comment was deleted, ``"account"`` when its author's
account is inactive) and ``deletedAt`` (deleted comments only). No author,
record, content, facets, embed or viewer state is included, so nothing the
author withdrew leaks through the thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from coves.atproto.syntax import format_datetime
from coves.views.author import author_view
from coves.views.blobs import BlobUrls

COMMENT_TYPE = "social.coves.community.comment"
_ZERO = timedelta(0)


def _ts(value: datetime) -> str:
    """format_datetime's output, on a fast path for the UTC values PostgreSQL returns."""
    if value.utcoffset() == _ZERO:
        text = value.isoformat(timespec="milliseconds")  # ...T12:00:00.000+00:00
        return text[:-6] + "Z"
    return format_datetime(value)


def _stats(row: Mapping[str, Any]) -> dict[str, int]:
    return {
        "upvotes": row["upvote_count"],
        "downvotes": row["downvote_count"],
        "score": row["score"],
        "replyCount": row["reply_count"],
    }


def _record(row: Mapping[str, Any]) -> dict[str, Any]:
    stored = row.get("record")
    if isinstance(stored, Mapping):
        return dict(stored)
    # Rows written before the record was stored: rebuild what we know.
    record: dict[str, Any] = {
        "$type": COMMENT_TYPE,
        "reply": {
            "root": {"uri": row["root_uri"], "cid": row["root_cid"]},
            "parent": {"uri": row["parent_uri"], "cid": row["parent_cid"]},
        },
        "content": row["content"] or "",
        "createdAt": _ts(row["created_at"]),
    }
    if row.get("facets"):
        record["facets"] = row["facets"]
    if row.get("embed"):
        record["embed"] = row["embed"]
    if row.get("langs"):
        record["langs"] = list(row["langs"])
    if row.get("labels"):
        record["labels"] = row["labels"]
    return record


def is_placeholder(row: Mapping[str, Any]) -> bool:
    return row["deleted_at"] is not None or not row["author_active"]


def comment_view(row: Mapping[str, Any], *, blobs: BlobUrls) -> dict[str, Any]:
    """commentView (as anyone sees it) from a comment row joined with its author.

    Viewer state is added per request by :func:`with_viewer_state`, so the
    anonymous view can be shared between viewers.
    """
    view: dict[str, Any] = {
        "uri": row["uri"],
        "cid": row["cid"],
        "post": {"uri": row["root_uri"], "cid": row["root_cid"]},
    }
    if row["parent_uri"] != row["root_uri"]:
        view["parent"] = {"uri": row["parent_uri"], "cid": row["parent_cid"]}
    view["createdAt"] = _ts(row["created_at"])
    view["indexedAt"] = _ts(row["indexed_at"])
    view["stats"] = _stats(row)

    if row["deleted_at"] is not None:
        view["isDeleted"] = True
        view["deletionReason"] = "author"
        view["deletedAt"] = _ts(row["deleted_at"])
        return view
    if not row["author_active"]:
        view["isDeleted"] = True
        view["deletionReason"] = "account"
        return view

    did = row["commenter_did"]
    pds = row["author_pds_url"]
    view["author"] = author_view(
        blobs,
        did,
        handle=row["author_handle"],
        display_name=row["author_display_name"],
        avatar=row["author_avatar"],
        pds=pds,
    )
    view["record"] = _record(row)
    view["content"] = row["content"] or ""
    if row["facets"]:
        view["contentFacets"] = row["facets"]
    if row["embed"]:
        embed = blobs.rewrite(row["embed"], did, pds)
        if embed is not None:
            view["embed"] = embed
    if row["langs"]:
        view["langs"] = list(row["langs"])
    if row["labels"]:
        view["labels"] = row["labels"]
    if row["edited_at"] is not None:
        view["editedAt"] = _ts(row["edited_at"])
    return view


def viewer_state(vote: Mapping[str, Any] | None) -> dict[str, Any]:
    """commentView.viewer: present (possibly empty) for every authenticated request."""
    if vote is None:
        return {}
    return {"vote": "up" if vote["direction"] > 0 else "down", "voteUri": vote["uri"]}


def live_uris(nodes: list[dict[str, Any]]) -> list[str]:
    """URIs of the non-placeholder comments in a thread (the ones viewer state applies to)."""
    out: list[str] = []
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not node["comment"].get("isDeleted"):
            out.append(node["comment"]["uri"])
        stack.extend(node.get("replies", ()))
    return out


def with_viewer_state(
    nodes: list[dict[str, Any]], votes: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Copies of shared threadViewComments with the viewer's state on every live comment."""
    out = []
    for node in nodes:
        comment = node["comment"]
        if not comment.get("isDeleted"):
            comment = {**comment, "viewer": viewer_state(votes.get(comment["uri"]))}
        copied = {**node, "comment": comment}
        if "replies" in node:
            copied["replies"] = with_viewer_state(node["replies"], votes)
        out.append(copied)
    return out


def thread_view_comment(
    comment: dict[str, Any], replies: list[dict[str, Any]] | None, has_more: bool
) -> dict[str, Any]:
    """threadViewComment: ``replies`` only when some are shown, ``hasMore`` only when true."""
    node: dict[str, Any] = {"comment": comment}
    if replies:
        node["replies"] = replies
    if has_more:
        node["hasMore"] = True
    return node
