"""``post.get``: posts by AT-URI for permalinks, with explicit placeholders.

Each requested URI yields exactly one entry, in request order (a URI asked
for twice gets two). Live posts the viewer may see are
``social.coves.community.post.get#postView``; every other entry carries the
flag the clients discriminate on besides its ``$type``:

- ``#notFoundPost {notFound}``: nothing indexed under the URI (or a private
  community the viewer is not a member of: it does not exist for them);
- ``#tombstonePost {deleted, deletedAt, notFound}``: its author deleted it;
- ``#unavailablePost {unavailable, reason, notFound}``: withheld because its
  author's account or its community is gone or unverified;
- ``#blockedPost {blocked, blockedBy}``: the viewer blocks its community
  (``community``), the viewer and the author block one another (``author``,
  with the author's basic view) or the author's host took the account down
  (``moderator``).

The decisions are :mod:`coves.read.rules`'; this module only renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.atproto.syntax import AtUri, format_datetime, is_valid_did
from coves.db import Database
from coves.db.queries import identity as identity_sql
from coves.db.queries import posts as post_sql
from coves.errors import invalid_request
from coves.params import many_str
from coves.read import relations, rules
from coves.read.posts import HydratedPost, present
from coves.read.rules import Why
from coves.read.services import ReadServices
from coves.read.views.post import POST_GET_VIEW

POST_COLLECTION = "social.coves.community.post"
MAX_URIS = 25
NSID = "social.coves.community.post.get"


def _parse_uris(params: Mapping[str, Any]) -> list[str]:
    uris = many_str(params, "uris")
    if not uris:
        raise invalid_request("uris parameter is required")
    if len(uris) > MAX_URIS:
        raise invalid_request(f"at most {MAX_URIS} uris per request")
    for uri in uris:
        try:
            parsed = AtUri.parse(uri)
        except ValueError as exc:
            raise invalid_request(f"uris: {uri!r} is not an AT-URI ({exc})") from None
        if not parsed.is_record:
            raise invalid_request(f"uris: {uri!r} does not name a record")
    return uris


async def _canonical(db: Database, uris: list[str]) -> dict[str, str]:
    """Requested URI -> the DID form posts are stored under, for post record URIs
    (``at://<handle>/...`` is resolved through indexed handles). Others are absent."""
    out: dict[str, str] = {}
    for uri in uris:
        parsed = AtUri.parse(uri)
        if parsed.collection != POST_COLLECTION:
            continue  # another record type is no post: a notFound entry
        if is_valid_did(parsed.authority):
            out[uri] = uri
            continue
        account = await identity_sql.user_by_handle(db, parsed.authority.lower())
        if account is not None:
            out[uri] = str(AtUri(account["did"], parsed.collection, parsed.rkey))
    return out


async def get_posts(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    requested = _parse_uris(params)
    canonical = await _canonical(db, requested)
    wanted = list(dict.fromkeys(canonical.values()))
    if viewer is None:
        posts, state = await svc.posts.load(wanted, fresh=True), relations.NOBODY
    else:
        posts, state = await svc.posts.load_with_viewer(wanted, viewer, fresh=True)
    tombstones: dict[str, Any] = {}
    absent = [uri for uri in wanted if uri not in posts]
    if absent:
        for row in await post_sql.state_of(db, absent):
            tombstones[f"at://{row['did']}/{row['collection']}/{row['rkey']}"] = row["updated_at"]
    out: list[dict[str, Any]] = []
    for uri in requested:
        stored = canonical.get(uri)
        post = posts.get(stored) if stored is not None else None
        if post is None:
            if stored is not None and stored in tombstones:
                out.append(_tombstone(uri, tombstones[stored]))
            else:
                out.append(_not_found(uri))
            continue
        why = rules.may_see_post(post.facts, state.relations)
        if why is None:
            out.append({"$type": POST_GET_VIEW, **present(post, state)})
        else:
            out.append(_withheld(uri, post, why))
    return {"posts": out}


def _not_found(uri: str) -> dict[str, Any]:
    return {"$type": f"{NSID}#notFoundPost", "uri": uri, "notFound": True}


def _tombstone(uri: str, deleted_at: Any) -> dict[str, Any]:
    return {
        "$type": f"{NSID}#tombstonePost",
        "uri": uri,
        "deleted": True,
        "deletedAt": format_datetime(deleted_at),
        "notFound": True,
    }


def _withheld(uri: str, post: HydratedPost, why: Why) -> dict[str, Any]:
    if why is Why.DELETED:
        return _tombstone(uri, post.facts.deleted_at)
    if why in (Why.PRIVATE, Why.NOT_FOUND):
        return _not_found(uri)
    blocked_by = why.blocked_by
    if blocked_by is not None:
        entry: dict[str, Any] = {
            "$type": f"{NSID}#blockedPost",
            "uri": uri,
            "blocked": True,
            "blockedBy": blocked_by,
        }
        if blocked_by == "author":
            author = post.view["author"]
            entry["author"] = {"did": author["did"], "handle": author["handle"]}
        return entry
    return {
        "$type": f"{NSID}#unavailablePost",
        "uri": uri,
        "unavailable": True,
        "reason": why.message,
        "notFound": True,
    }
