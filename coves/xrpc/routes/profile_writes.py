"""social.coves.actor.updateProfile: the caller's Coves profile."""

from __future__ import annotations

from typing import Any

from coves.writes.profile import MAX_BODY, update_profile
from coves.writes.repo import caller_repo
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure(
    "social.coves.actor.updateProfile", viewer_limits=("user_writes",), max_body=MAX_BODY
)
async def actor_update_profile(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await update_profile(req.ctx.lexicons, repo, req.body)
