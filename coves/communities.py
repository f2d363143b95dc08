"""Community reads: resolving identifiers, get, list and search.

Listing policy (documented in docs/ranking.md and the README of the API):
only verified, non-deleted communities whose account is active appear. The
default listing shows public communities; ``visibility=unlisted`` asks for
unlisted ones; private communities are listed only to their subscribers
(``visibility=private`` or ``subscribed=true``, both requiring auth).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from coves.atproto.syntax import is_valid_did, is_valid_handle, is_valid_language
from coves.cursors import invalid_cursor
from coves.db import Database, Row
from coves.db.queries import communities as community_sql
from coves.db.queries.communities import ListSort
from coves.errors import XRPCError, invalid_request
from coves.feeds import ReadServices
from coves.params import bool_param, choice_param, int_param, one_str
from coves.search import trigrams
from coves.views.community import CommunityViewer, community_pds, community_view

NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
LIST_SORTS: tuple[str, ...] = ("popular", "active", "new", "alphabetical")
VISIBILITIES: tuple[str, ...] = ("public", "unlisted", "private")
MAX_QUERY_LENGTH = 256


def is_visible(row: Row) -> bool:
    """Whether a community may be shown at all (verified, live, active account)."""
    return bool(row["verification"] == "verified" and row["deleted_at"] is None and row["active"])


async def resolve(db: Database, svc: ReadServices, identifier: str) -> Row | None:
    """A community row for a DID, handle, ``@handle`` or ``!name@instance``.

    Malformed identifiers are 400 ``InvalidRequest``; unknown ones are None.
    """
    ident = identifier.strip()
    if ident.startswith("did:"):
        if not is_valid_did(ident):
            raise invalid_request("community: not a valid DID")
        return await community_sql.by_did(db, ident)
    if ident.startswith("!"):
        name, sep, domain = ident[1:].partition("@")
        domain = domain.lower()
        if not sep or not NAME_RE.match(name) or not HOSTNAME_RE.match(domain):
            raise invalid_request("community: scoped identifiers look like !name@instance")
        hosted_by = svc.instance_did if domain == svc.instance_domain else f"did:web:{domain}"
        return await community_sql.by_scoped_name(db, name.lower(), hosted_by, domain)
    handle = ident.removeprefix("@").lower()
    if not is_valid_handle(handle):
        raise invalid_request(
            "community: must be a DID, handle, or scoped identifier (!name@instance)"
        )
    return await community_sql.by_handle(db, handle)


async def resolve_cached(db: Database, svc: ReadServices, identifier: str) -> Row | None:
    """:func:`resolve` through the short-TTL cache (feeds resolve on every page)."""
    ident = identifier.strip()
    key = ident if ident.startswith("did:") else ident.lower()
    return await svc.communities.get_or_load(key, lambda: resolve(db, svc, identifier))


async def viewer_states(
    db: Database, viewer: str | None, rows: list[Row]
) -> dict[str, CommunityViewer]:
    if viewer is None or not rows:
        return {}
    dids = [row["did"] for row in rows]
    subscribed, blocked = await community_sql.viewer_state(db, viewer, dids)
    return {did: CommunityViewer(subscribed.get(did), blocked.get(did)) for did in dids}


def render(svc: ReadServices, row: Row, viewer: CommunityViewer | None) -> dict[str, Any]:
    pds = community_pds(row, svc.instance_did, svc.default_pds)
    return community_view(row, svc.blobs, pds, viewer)


async def get_community(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    ident = one_str(params, "community", required=True)
    assert ident is not None
    row = await resolve(db, svc, ident)
    if row is None or not is_visible(row):
        raise XRPCError(404, "NotFound", "community not found")
    states = await viewer_states(db, viewer, [row])
    return render(svc, row, states.get(row["did"]))


def _list_cursor_key(row: Row, sort: str) -> Any:
    value = row["sort_key"]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def list_communities(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    sort = cast(ListSort, choice_param(params, "sort", LIST_SORTS, "popular"))
    visibility = choice_param(params, "visibility", VISIBILITIES, None)
    subscribed_only = bool_param(params, "subscribed")
    category = one_str(params, "category")
    language = one_str(params, "language")
    if category is not None and len(category) > 640:
        raise invalid_request("category is too long")
    if language is not None and not is_valid_language(language):
        raise invalid_request("language must be a BCP-47 language tag")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    if (subscribed_only or visibility == "private") and viewer is None:
        raise XRPCError(
            401, "AuthenticationRequired", "listing subscribed or private communities needs auth"
        )
    filters = hashlib.sha256(f"{category}\x00{language}".encode()).hexdigest()[:12]
    kind = f"community.list:{sort}:{visibility}:{int(subscribed_only)}:{filters}:{viewer or ''}"
    after = None
    cursor = one_str(params, "cursor")
    if cursor is not None:
        payload = svc.cursors.decode(kind, cursor)
        key, did = payload.get("v"), payload.get("d")
        if not isinstance(did, str) or not isinstance(key, (str, int, type(None))):
            raise invalid_cursor()
        after = (key, did)
    rows = await community_sql.list_page(
        db,
        sort=sort,
        limit=limit + 1,
        after=after,
        visibility=visibility,
        viewer=viewer,
        subscribed_only=subscribed_only,
        category=category,
        language=language,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    states = await viewer_states(db, viewer, rows)
    body: dict[str, Any] = {
        "communities": [render(svc, row, states.get(row["did"])) for row in rows]
    }
    if more and rows:
        last = rows[-1]
        body["cursor"] = svc.cursors.encode(
            kind, {"v": _list_cursor_key(last, sort), "d": last["did"]}
        )
    return body


async def search_communities(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    q = one_str(params, "q", required=True)
    assert q is not None
    if len(q) > MAX_QUERY_LENGTH:
        raise invalid_request(f"q must be at most {MAX_QUERY_LENGTH} characters")
    visibility = choice_param(params, "visibility", VISIBILITIES, None)
    if visibility == "private" and viewer is None:
        raise XRPCError(401, "AuthenticationRequired", "searching private communities needs auth")
    limit = int_param(params, "limit", default=50, low=1, high=100)
    # The cursor is bound to the exact query, so it cannot be replayed on another.
    digest = hashlib.sha256(f"{q}\x00{visibility}\x00{viewer}".encode()).hexdigest()[:16]
    kind = f"community.search:{digest}"
    offset = 0
    cursor = one_str(params, "cursor")
    if cursor is not None:
        raw = svc.cursors.decode(kind, cursor).get("o")
        if type(raw) is not int or raw < 0 or raw > 10_000:
            raise invalid_cursor()
        offset = raw
    grams = trigrams(q)
    rows: list[Row] = []
    if grams:
        rows = await community_sql.search_page(
            db,
            trigrams=grams,
            term=q.lower().lstrip("!@"),
            limit=limit + 1,
            offset=offset,
            visibility=visibility,
            viewer=viewer,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    states = await viewer_states(db, viewer, rows)
    body: dict[str, Any] = {
        "communities": [render(svc, row, states.get(row["did"])) for row in rows],
    }
    if rows:
        body["total"] = rows[0]["total"]
    elif offset == 0:
        body["total"] = 0
    if more:
        body["cursor"] = svc.cursors.encode(kind, {"o": offset + limit})
    return body
