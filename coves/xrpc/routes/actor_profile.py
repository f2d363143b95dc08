"""``social.coves.actor.getProfile``: an indexed account's profile."""

from __future__ import annotations

from typing import Any

from coves.atproto.syntax import is_valid_did, is_valid_handle, normalize_handle
from coves.auth.base import AuthPolicy
from coves.db import Row
from coves.db.queries import identity as q
from coves.errors import XRPCError, invalid_request
from coves.identity import IdentityError
from coves.logs import get_logger
from coves.params import one_str
from coves.views.profile import profile_view
from coves.xrpc.routing import Router, XRPCRequest

log = get_logger(__name__)
router = Router()

HIDDEN_STATUSES = frozenset({"takendown", "suspended", "deleted", "deactivated"})


@router.query("social.coves.actor.getProfile", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def get_profile(req: XRPCRequest) -> Any:
    actor = one_str(req.params, "actor", required=True)
    assert actor is not None
    actor = actor.removeprefix("@")
    db = req.ctx.db
    row: Row | None
    if actor.startswith("did:"):
        if not is_valid_did(actor):
            raise invalid_request("actor: not a valid DID")
        row = await q.user_by_did(db, actor)
    else:
        handle = normalize_handle(actor)
        if not is_valid_handle(handle):
            raise invalid_request("actor must be a DID or handle")
        row = await q.user_by_handle(db, handle)
        if row is None:
            row = await _by_resolved_handle(req, handle)
    if row is None or not row["active"] or row.get("account_status") in HIDDEN_STATUSES:
        raise XRPCError(404, "NotFound", "profile not found")
    stats = await q.user_stats(db, row["did"])
    return profile_view(req.ctx.read.blobs, row, stats)


async def _by_resolved_handle(req: XRPCRequest, handle: str) -> Row | None:
    """A handle not (yet) in ``users``: resolve it (bidirectionally) to an indexed DID."""
    resolver = req.ctx.identity
    if resolver is None:
        return None
    try:
        found = await resolver.resolve_actor(handle)
    except IdentityError as exc:
        log.debug("profile handle unresolved", handle=handle, why=exc.reason)
        return None
    return await q.user_by_did(req.ctx.db, found.did)
