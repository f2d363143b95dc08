"""``post.get``: posts by AT-URI for permalinks, with explicit placeholders.

Each requested URI yields exactly one entry, in request order: the postView,
or ``{uri, notFound: true}`` (never indexed), ``{uri, deleted: true,
deletedAt}`` (tombstone: the author deleted it), ``{uri, unavailable: true,
reason}`` (author or community deactivated, community removed, or a private
community the viewer does not subscribe to), or ``{uri, blocked: true}`` (the
viewer blocks its community).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.atproto.syntax import format_datetime, parse_record_uri
from coves.db import Database
from coves.db.queries import communities as community_sql
from coves.db.queries import posts as post_sql
from coves.errors import invalid_request
from coves.feeds import ReadServices
from coves.params import many_str

POST_COLLECTION = "social.coves.community.post"
MAX_URIS = 25
_NSID = "social.coves.community.post.get"
POST_VIEW = "social.coves.feed.defs#postView"


def _parse_uris(params: Mapping[str, Any]) -> list[str]:
    uris = many_str(params, "uris")
    if not uris:
        raise invalid_request("uris parameter is required")
    if len(uris) > MAX_URIS:
        raise invalid_request(f"at most {MAX_URIS} uris per request")
    for uri in uris:
        try:
            parsed = parse_record_uri(uri)
        except ValueError as exc:
            raise invalid_request(f"uris: {uri!r} is not a record AT-URI ({exc})") from None
        if parsed.collection != POST_COLLECTION:
            raise invalid_request(f"uris: {uri!r} is not a {POST_COLLECTION} record")
    return list(dict.fromkeys(uris))


async def get_posts(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    uris = _parse_uris(params)
    posts = await svc.posts.load(uris, fresh=True)
    blocked: set[str] = set()
    votes: dict[str, tuple[int, str]] = {}
    if viewer is not None and posts:
        blocked, votes = await post_sql.viewer_state(db, viewer, list(posts))
    private = sorted({p.community_did for p in posts.values() if p.community_private})
    members: dict[str, str] = {}
    if private and viewer is not None:
        members, _ = await community_sql.viewer_state(db, viewer, private)
    tombstones: dict[str, Any] = {}
    absent = [uri for uri in uris if uri not in posts]
    if absent:
        for row in await post_sql.state_of(db, absent):
            uri = f"at://{row['did']}/{row['collection']}/{row['rkey']}"
            tombstones[uri] = row["updated_at"]
    out: list[dict[str, Any]] = []
    for uri in uris:
        post = posts.get(uri)
        if post is None:
            if uri in tombstones:
                out.append(_deleted(uri, tombstones[uri]))
            else:
                out.append({"$type": f"{_NSID}#notFoundPost", "uri": uri, "notFound": True})
        elif post.deleted_at is not None:
            out.append(_deleted(uri, post.deleted_at))
        elif post.unavailable is not None:
            out.append(
                {
                    "$type": f"{_NSID}#unavailablePost",
                    "uri": uri,
                    "unavailable": True,
                    "reason": post.unavailable,
                }
            )
        elif post.community_private and post.community_did not in members:
            out.append(
                {
                    "$type": f"{_NSID}#unavailablePost",
                    "uri": uri,
                    "unavailable": True,
                    "reason": "community is private",
                }
            )
        elif post.community_did in blocked:
            out.append({"$type": f"{_NSID}#blockedPost", "uri": uri, "blocked": True})
        else:
            # A union member: every entry names its type, postViews included.
            out.append({"$type": POST_VIEW, **svc.posts.decorate(post, viewer, votes)})
    return {"posts": out}


def _deleted(uri: str, deleted_at: Any) -> dict[str, Any]:
    return {
        "$type": f"{_NSID}#tombstonePost",
        "uri": uri,
        "deleted": True,
        "deletedAt": format_datetime(deleted_at),
    }
