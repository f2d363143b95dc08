"""Blocking accounts through Coves: social.coves.actor.blockUser / .unblockUser."""

from __future__ import annotations

from typing import Any

from coves.writes.repo import caller_repo
from coves.writes.user_blocks import block_user, unblock_user
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure("social.coves.actor.blockUser", viewer_limits=("user_writes",))
async def actor_block_user(req: XRPCRequest) -> dict[str, Any]:
    ctx = req.ctx
    async with caller_repo(ctx.user_repos, req.viewer) as repo:
        return await block_user(ctx.db, ctx.identity, ctx.lexicons, repo, req.body)


@router.procedure("social.coves.actor.unblockUser", viewer_limits=("user_writes",))
async def actor_unblock_user(req: XRPCRequest) -> dict[str, Any]:
    ctx = req.ctx
    async with caller_repo(ctx.user_repos, req.viewer) as repo:
        return await unblock_user(ctx.db, ctx.identity, repo, req.body)
