"""Subscriptions and community blocks through Coves."""

from __future__ import annotations

from typing import Any

from coves.writes.memberships import block_community, subscribe, unblock_community, unsubscribe
from coves.writes.repo import caller_repo
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure("social.coves.community.subscribe", viewer_limits=("user_writes",))
async def community_subscribe(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await subscribe(req.ctx.db, req.ctx.read, req.ctx.lexicons, repo, req.body)


@router.procedure("social.coves.community.unsubscribe", viewer_limits=("user_writes",))
async def community_unsubscribe(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await unsubscribe(req.ctx.db, req.ctx.read, repo, req.body)


@router.procedure("social.coves.community.blockCommunity", viewer_limits=("user_writes",))
async def community_block(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await block_community(req.ctx.db, req.ctx.read, req.ctx.lexicons, repo, req.body)


@router.procedure("social.coves.community.unblockCommunity", viewer_limits=("user_writes",))
async def community_unblock(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await unblock_community(req.ctx.db, req.ctx.read, repo, req.body)
