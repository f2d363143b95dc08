"""Community reads: identifiers, get, list, search and the viewer's blocked communities.

Who sees which community is :mod:`coves.read.rules`' decision: listings show
public communities by default, unlisted ones when asked for, private ones to
their members only, never one the viewer blocks; ``get`` answers for any
community the viewer may read (a blocked one too, so it can be unblocked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from coves.atproto.syntax import (
    format_datetime,
    is_valid_community_name,
    is_valid_did,
    is_valid_handle,
    is_valid_hostname,
    is_valid_language,
)
from coves.cursors import invalid_cursor
from coves.db import Database, Row
from coves.db.queries import communities as community_sql
from coves.db.queries.communities import ListSort
from coves.errors import XRPCError, invalid_request
from coves.params import bool_param, choice_param, limit_param, one_str
from coves.read import facts, keyset, relations, rules
from coves.read.rules import Why
from coves.read.services import ReadServices
from coves.read.views.community import CommunityViewer, community_pds, community_view
from coves.search import trigrams

LIST_SORTS: tuple[str, ...] = ("popular", "active", "new", "alphabetical")
VISIBILITIES: tuple[str, ...] = rules.VISIBILITIES
MAX_QUERY_LENGTH = 256
LIST_LIMIT, LIST_MAX = 50, 100
IDENTIFIER_FORMS = "a DID, handle, @handle, !name@instance, name@instance or a local name"


@dataclass(frozen=True)
class Identifier:
    """A parsed ``community`` parameter."""

    did: str | None = None
    handle: str | None = None
    name: str | None = None  # with ``domain``: a scoped name (``!name@domain``, ``name``)
    domain: str | None = None

    @property
    def cache_key(self) -> str:
        return self.did or self.handle or f"!{self.name}@{self.domain}"


def parse_identifier(identifier: str, instance_domain: str) -> Identifier:
    """Every form the clients send: a DID, a handle (``@`` optional), ``!name@instance``,
    ``name@instance`` and a bare name of a community this instance hosts. 400 on
    anything else."""
    ident = identifier.strip()
    if ident.startswith("did:"):
        if not is_valid_did(ident):
            raise invalid_request("community: not a valid DID")
        return Identifier(did=ident)
    if ident.startswith("@"):
        handle = ident[1:].lower()
        if not is_valid_handle(handle):
            raise invalid_request(f"community: must be {IDENTIFIER_FORMS}")
        return Identifier(handle=handle)
    scoped = ident.removeprefix("!")
    if "@" in scoped:
        name, _, domain = scoped.partition("@")
        domain = domain.lower()
        if not is_valid_community_name(name) or not is_valid_hostname(domain):
            raise invalid_request("community: scoped identifiers look like !name@instance")
        return Identifier(name=name.lower(), domain=domain)
    if ident.startswith("!"):
        raise invalid_request("community: scoped identifiers look like !name@instance")
    if "." not in ident and is_valid_community_name(ident) and instance_domain:
        return Identifier(name=ident.lower(), domain=instance_domain)
    handle = ident.lower()
    if not is_valid_handle(handle):
        raise invalid_request(f"community: must be {IDENTIFIER_FORMS}")
    return Identifier(handle=handle)


async def resolve(db: Database, svc: ReadServices, identifier: str) -> Row | None:
    """A community row for any identifier form (malformed: 400; unknown: None)."""
    return await _lookup(db, svc, parse_identifier(identifier, svc.instance_domain))


async def _lookup(db: Database, svc: ReadServices, ident: Identifier) -> Row | None:
    if ident.did is not None:
        return await community_sql.by_did(db, ident.did)
    if ident.handle is not None:
        return await community_sql.by_handle(db, ident.handle)
    assert ident.name is not None and ident.domain is not None
    domain = ident.domain
    hosted_by = svc.instance_did if domain == svc.instance_domain else f"did:web:{domain}"
    return await community_sql.by_scoped_name(db, ident.name, hosted_by, domain)


async def resolve_cached(db: Database, svc: ReadServices, identifier: str) -> Row | None:
    """:func:`resolve` through the short-TTL cache (feeds resolve on every page)."""
    ident = parse_identifier(identifier, svc.instance_domain)
    return await svc.communities.get_or_load(ident.cache_key, lambda: _lookup(db, svc, ident))


def exists(row: Row) -> bool:
    """Whether the community is there for anyone at all (the rules' answer), for writes
    that need a live community before they look at who is asking."""
    return rules.community_exists(facts.community(row)) is None


async def may_read(db: Database, viewer: str | None, row: Row) -> Why | None:
    """The rules' answer for one community row and viewer; membership is only
    looked up when the answer depends on it (a private community)."""
    community = facts.community(row)
    why = rules.may_read_community(community, rules.ANONYMOUS)
    if why is Why.PRIVATE and viewer is not None:
        state = await relations.load(db, viewer, communities=[community.did])
        why = rules.may_read_community(community, state.relations)
    return why


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


async def _listed(
    db: Database, svc: ReadServices, viewer: str | None, rows: list[Row]
) -> list[dict[str, Any]]:
    """The views of a listing's rows the rules let this viewer see listed."""
    states = await viewer_states(db, viewer, rows)
    rel = rules.Relations(
        viewer=viewer,
        member_of=frozenset(did for did, s in states.items() if s.subscription_uri),
        blocked_communities=frozenset(did for did, s in states.items() if s.block_uri),
    )
    return [
        render(svc, row, states.get(row["did"]))
        for row in rows
        if rules.may_list_community(facts.community(row), rel)
    ]


async def get_community(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    ident = one_str(params, "community", required=True)
    assert ident is not None
    row = await resolve(db, svc, ident)
    if row is None or await may_read(db, viewer, row) is not None:
        raise XRPCError(404, "NotFound", "community not found")
    states = await viewer_states(db, viewer, [row])
    return render(svc, row, states.get(row["did"]))


def _list_cursor_key(row: Row) -> Any:
    value = row["sort_key"]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _filters(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
    category = one_str(params, "category")
    language = one_str(params, "language")
    if category is not None and len(category) > 640:
        raise invalid_request("category is too long")
    if language is not None and not is_valid_language(language):
        raise invalid_request("language must be a BCP-47 language tag")
    return category, language


async def list_communities(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    sort = cast(ListSort, choice_param(params, "sort", LIST_SORTS, "popular"))
    visibility = choice_param(params, "visibility", VISIBILITIES, None)
    subscribed_only = bool_param(params, "subscribed")
    category, language = _filters(params)
    limit = limit_param(params, default=LIST_LIMIT, high=LIST_MAX)
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
    body: dict[str, Any] = {"communities": await _listed(db, svc, viewer, rows)}
    if more and rows:
        last = rows[-1]
        body["cursor"] = svc.cursors.encode(kind, {"v": _list_cursor_key(last), "d": last["did"]})
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
    category, language = _filters(params)
    limit = limit_param(params, default=LIST_LIMIT, high=LIST_MAX)
    # The cursor is bound to the exact query, so it cannot be replayed on another.
    digest = hashlib.sha256(
        f"{q}\x00{visibility}\x00{viewer}\x00{category}\x00{language}".encode()
    ).hexdigest()[:16]
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
            category=category,
            language=language,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    body: dict[str, Any] = {"communities": await _listed(db, svc, viewer, rows)}
    if rows:
        body["total"] = rows[0]["total"]
    elif offset == 0:
        body["total"] = 0
    if more:
        body["cursor"] = svc.cursors.encode(kind, {"o": offset + limit})
    return body


BLOCKED_CURSOR = "community.blocks"


async def blocked_communities(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str
) -> dict[str, Any]:
    """``community.getBlockedCommunities``: the viewer's own blocks, newest first;
    every one of them, whatever became of the community (rule 7 of
    :mod:`coves.read.rules`: the viewer's own records stay undoable, and they carry
    only the DID the viewer named)."""
    limit = limit_param(params, default=LIST_LIMIT, high=LIST_MAX)
    cursor = one_str(params, "cursor")
    kind = f"{BLOCKED_CURSOR}:{viewer}"
    after = keyset.decode(svc.cursors, kind, cursor) if cursor is not None else None
    rows = await community_sql.blocked_page(db, viewer, limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    body: dict[str, Any] = {
        "blocks": [
            {
                "communityDid": row["community_did"],
                "recordUri": row["uri"],
                "recordCid": row["record_cid"],
                "blockedAt": format_datetime(row["created_at"]),
            }
            for row in rows
        ]
    }
    if more and rows:
        last = rows[-1]
        body["cursor"] = keyset.encode(svc.cursors, kind, last["created_at"], last["uri"])
    return body
