"""Actor reads: naming an account, its profile, the viewer's blocked users, and
``com.atproto.identity.resolveHandle``.

An account whose host deactivated, deleted, took down or suspended it has no
profile (rule 2 of :mod:`coves.read.rules`); user blocks do not hide a
profile, they show in its viewer state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coves.atproto.syntax import format_datetime, is_valid_did, is_valid_handle, normalize_handle
from coves.db import Database, Row
from coves.db.queries import actors as actor_sql
from coves.db.queries import communities as community_sql
from coves.db.queries import identity as identity_sql
from coves.errors import XRPCError, invalid_request
from coves.identity import IdentityError, IdentityResolver
from coves.logs import get_logger
from coves.params import int_param, limit_param, one_str
from coves.read import facts, rules
from coves.read.services import ReadServices
from coves.read.views.profile import ProfileViewer, profile_view

log = get_logger(__name__)

BLOCKS_LIMIT, BLOCKS_MAX = 50, 100
MAX_OFFSET = 10_000


def _actor_param(params: Mapping[str, Any]) -> str:
    actor = one_str(params, "actor", required=True)
    assert actor is not None
    actor = actor.removeprefix("@")
    if actor.startswith("did:"):
        if not is_valid_did(actor):
            raise invalid_request("actor: not a valid DID")
        return actor
    handle = normalize_handle(actor)
    if not is_valid_handle(handle):
        raise invalid_request("actor must be a DID or handle")
    return handle


async def find_actor(
    db: Database, identity: IdentityResolver | None, params: Mapping[str, Any]
) -> Row | None:
    """The ``users`` row the ``actor`` parameter names (DID or handle; a handle not
    yet indexed is resolved, bidirectionally, to an indexed DID)."""
    actor = _actor_param(params)
    if actor.startswith("did:"):
        return await identity_sql.user_by_did(db, actor)
    row = await identity_sql.user_by_handle(db, actor)
    if row is not None or identity is None:
        return row
    try:
        found = await identity.resolve_actor(actor)
    except IdentityError as exc:
        log.debug("actor handle unresolved", handle=actor, why=exc.reason)
        return None
    return await identity_sql.user_by_did(db, found.did)


async def visible_actor(
    db: Database, identity: IdentityResolver | None, params: Mapping[str, Any]
) -> Row:
    """:func:`find_actor`, 404 ``NotFound`` when there is none or the rules withhold it."""
    row = await find_actor(db, identity, params)
    if row is None:
        raise XRPCError(404, "NotFound", "actor not found")
    account = facts.account(row["did"], row["active"], row["account_status"])
    if rules.may_see_profile(account) is not None:
        raise XRPCError(404, "NotFound", "actor not found")
    return row


async def get_profile(
    db: Database,
    svc: ReadServices,
    identity: IdentityResolver | None,
    params: Mapping[str, Any],
    viewer: str | None,
) -> dict[str, Any]:
    row = await visible_actor(db, identity, params)
    stats = await actor_sql.stats(db, row["did"])
    state: ProfileViewer | None = None
    if viewer is not None:
        block = await actor_sql.block_between(db, viewer, row["did"])
        state = ProfileViewer(block_uri=block["blocking"], blocked_by=bool(block["blocked_by"]))
    return profile_view(svc.blobs, row, stats, state)


async def blocked_users(db: Database, params: Mapping[str, Any], viewer: str) -> dict[str, Any]:
    """``actor.getBlockedUsers``: the viewer's own user blocks, newest first, by offset
    (what the web client sends); every one of them, whatever became of the account
    (rule 7 of :mod:`coves.read.rules`: the viewer's own records stay undoable)."""
    limit = limit_param(params, default=BLOCKS_LIMIT, high=BLOCKS_MAX)
    offset = int_param(params, "offset", default=0, low=0, high=MAX_OFFSET)
    rows = await actor_sql.blocked_users(db, viewer, limit, offset)
    return {
        "blocks": [
            {
                "blockedDid": row["subject_did"],
                "recordUri": row["uri"],
                "recordCid": row["record_cid"],
                "blockedAt": format_datetime(row["created_at"]),
            }
            for row in rows
        ]
    }


async def _indexed_did(db: Database, handle: str) -> str | None:
    """The DID the index holds for ``handle``, if the rules let it be answered
    (``rules.may_resolve_handle``: an account with a profile; for a community's
    account, a community anyone may read)."""
    row = await identity_sql.user_by_handle(db, handle)
    if row is None:
        return None
    community = await community_sql.by_did(db, row["did"])
    account = facts.account(row["did"], row["active"], row["account_status"])
    shown = rules.may_resolve_handle(
        account, facts.community(community) if community is not None else None
    )
    return str(row["did"]) if shown else None


async def resolve_handle(
    db: Database, identity: IdentityResolver | None, params: Mapping[str, Any]
) -> dict[str, str]:
    """Indexed accounts first (their handles are verified when indexed), else DNS or
    ``/.well-known/atproto-did``; 400 ``HandleNotFound`` when neither answers. The
    index answers what the rules let anyone see; what it withholds is left to the
    network, which answers only what the handle's own DNS or host publishes."""
    raw = one_str(params, "handle", required=True)
    assert raw is not None
    handle = normalize_handle(raw.removeprefix("@"))
    if not is_valid_handle(handle):
        raise invalid_request("handle: not a valid handle")
    did = await _indexed_did(db, handle)
    if did is not None:
        return {"did": did}
    if identity is not None:
        try:
            return {"did": await identity.handle_to_did(handle)}
        except IdentityError as exc:
            log.debug("handle unresolved", handle=handle, why=exc.reason)
    raise XRPCError(400, "HandleNotFound", f"unable to resolve handle {handle}")
