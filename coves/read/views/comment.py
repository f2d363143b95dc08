"""commentView and threadViewComment: the only place they are assembled.

Placeholders. A comment the read rules (``coves.read.rules``) withhold keeps
its position so the replies under it stay reachable: deleted by its author,
written by an account that is deactivated or deleted, or taken down or
suspended by its host, or (per viewer) by an account the viewer blocks or
that blocks the viewer. It renders as a placeholder commentView: ``uri``,
``cid``, ``post``, ``parent``, ``createdAt``, ``indexedAt``, ``stats`` and
``isDeleted: true`` with ``deletionReason`` (``author``, ``account``,
``moderator`` or ``blocked``) and ``deletedAt`` (deleted comments only). No
author, record, content, facets, embed or viewer state is included, so
nothing withheld leaks through the thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from coves.atproto.syntax import format_datetime
from coves.read import facts, rules
from coves.read.relations import ViewerState, Vote
from coves.read.views.author import author_view
from coves.read.views.blobs import BlobUrls
from coves.read.views.embed import embed_view

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

    why = rules.comment_withheld(facts.comment(row))
    if why is not None:
        view["isDeleted"] = True
        view["deletionReason"] = rules.deletion_reason(why)
        if row["deleted_at"] is not None:
            view["deletedAt"] = _ts(row["deleted_at"])
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
        embed = embed_view(row["embed"], blobs, did, pds)
        if embed is not None:
            view["embed"] = embed
    if row["langs"]:
        view["langs"] = list(row["langs"])
    if row["labels"]:
        view["labels"] = row["labels"]
    if row["edited_at"] is not None:
        view["editedAt"] = _ts(row["edited_at"])
    return view


def viewer_state(vote: Vote | None) -> dict[str, Any]:
    """commentView.viewer: present (possibly empty) for every authenticated request."""
    if vote is None:
        return {}
    return {"vote": "up" if vote.direction > 0 else "down", "voteUri": vote.uri}


_PLACEHOLDER_FIELDS = ("uri", "cid", "post", "parent", "createdAt", "indexedAt", "stats")


def placeholder(view: Mapping[str, Any], why: rules.Why) -> dict[str, Any]:
    """The placeholder of a shown commentView that the rules withhold from one viewer."""
    out = {name: view[name] for name in _PLACEHOLDER_FIELDS if name in view}
    out["isDeleted"] = True
    out["deletionReason"] = rules.deletion_reason(why)
    return out


def live_comments(nodes: list[dict[str, Any]]) -> dict[str, str]:
    """URI -> author DID of the non-placeholder comments in a thread (the ones viewer
    state and the per-viewer rules apply to)."""
    out: dict[str, str] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        comment = node["comment"]
        if not comment.get("isDeleted"):
            out[comment["uri"]] = comment["author"]["did"]
        stack.extend(node.get("replies", ()))
    return out


def with_viewer(
    nodes: list[dict[str, Any]], state: ViewerState, authors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Copies of shared threadViewComments as one viewer sees them: their vote on
    every live comment, and placeholders for comments the rules withhold from them."""
    rel = state.relations
    out = []
    for node in nodes:
        comment = node["comment"]
        author = authors.get(comment["uri"])
        if author is not None:
            why = rules.may_see_comment(
                rules.CommentFacts(comment["uri"], rules.Account(author)), rel
            )
            if why is None:
                comment = {**comment, "viewer": viewer_state(state.votes.get(comment["uri"]))}
            else:
                comment = placeholder(comment, why)
        copied = {**node, "comment": comment}
        if "replies" in node:
            copied["replies"] = with_viewer(node["replies"], state, authors)
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
