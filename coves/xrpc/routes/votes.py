"""Votes through Coves: social.coves.feed.vote.create / .delete."""

from __future__ import annotations

from typing import Any

from coves.writes.repo import caller_repo
from coves.writes.votes import create_vote, delete_vote
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure("social.coves.feed.vote.create", viewer_limits=("user_writes",))
async def vote_create(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await create_vote(req.ctx.db, req.ctx.read, req.ctx.lexicons, repo, req.body)


@router.procedure("social.coves.feed.vote.delete", viewer_limits=("user_writes",))
async def vote_delete(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await delete_vote(req.ctx.db, repo, req.body)
