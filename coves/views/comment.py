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

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from coves.atproto.syntax import INVALID_HANDLE, format_datetime

# (pds_url, did, cid) -> URL, or None when no URL can be built. The read-API
# workstream owns the shared builder; until it lands, make_blob_url() is it.
BlobUrl = Callable[[str | None, str, str], str | None]

COMMENT_TYPE = "social.coves.community.comment"
_ZERO = timedelta(0)


def make_blob_url(template: str) -> BlobUrl:
    """A blob URL builder from ``BLOB_URL_TEMPLATE`` ({pds}, {did}, {cid}, escaped)."""

    def build(pds: str | None, did: str, cid: str) -> str | None:
        if "{pds}" in template and not (pds and pds.startswith(("https://", "http://"))):
            return None
        return (
            template.replace("{pds}", (pds or "").rstrip("/"))
            .replace("{did}", quote(did, safe=":"))
            .replace("{cid}", quote(cid, safe=""))
        )

    return build


def blob_cid(value: Any) -> str | None:
    """The CID of a blob ref, in either the current or the legacy JSON form."""
    if not isinstance(value, Mapping):
        return None
    if value.get("$type") == "blob":
        ref = value.get("ref")
        link = ref.get("$link") if isinstance(ref, Mapping) else None
        return link if isinstance(link, str) else None
    cid = value.get("cid")
    if isinstance(cid, str) and isinstance(value.get("mimeType"), str):
        return cid
    return None


def embed_with_urls(embed: Any, pds: str | None, did: str, blob_url: BlobUrl) -> Any:
    """Replace every blob ref in an embed with its URL (dropped when none can be built)."""
    cid = blob_cid(embed)
    if cid is not None:
        return blob_url(pds, did, cid)
    if isinstance(embed, Mapping):
        out: dict[str, Any] = {}
        for key, value in embed.items():
            converted = embed_with_urls(value, pds, did, blob_url)
            if converted is not None or value is None:
                out[key] = converted
        return out
    if isinstance(embed, list):
        return [embed_with_urls(item, pds, did, blob_url) for item in embed]
    return embed


def author_view(
    did: str,
    *,
    handle: str | None,
    display_name: str | None,
    avatar: Any,
    pds_url: str | None,
    blob_url: BlobUrl,
) -> dict[str, Any]:
    view: dict[str, Any] = {"did": did, "handle": handle or INVALID_HANDLE}
    if display_name:
        view["displayName"] = display_name
    cid = blob_cid(avatar)
    if cid is not None:
        url = blob_url(pds_url, did, cid)
        if url is not None:
            view["avatar"] = url
    return view


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


def comment_view(row: Mapping[str, Any], *, blob_url: BlobUrl) -> dict[str, Any]:
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
        did,
        handle=row["author_handle"],
        display_name=row["author_display_name"],
        avatar=row["author_avatar"],
        pds_url=pds,
        blob_url=blob_url,
    )
    view["record"] = _record(row)
    view["content"] = row["content"] or ""
    if row["facets"]:
        view["contentFacets"] = row["facets"]
    if row["embed"]:
        embed = embed_with_urls(row["embed"], pds, did, blob_url)
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
