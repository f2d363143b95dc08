"""Comments through Coves: social.coves.community.comment.create / .update / .delete."""

from __future__ import annotations

from typing import Any

from coves.writes.comments import create_comment, delete_comment, update_comment
from coves.writes.repo import caller_repo
from coves.xrpc.routing import Router, XRPCRequest

router = Router()

# Per address (the comments class every comment endpoint shares) and per account.
PER_ADDRESS = ("comments",)
PER_ACCOUNT = ("user_writes",)


@router.procedure(
    "social.coves.community.comment.create", limits=PER_ADDRESS, viewer_limits=PER_ACCOUNT
)
async def comment_create(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await create_comment(req.ctx.db, req.ctx.read, req.ctx.lexicons, repo, req.body)


@router.procedure(
    "social.coves.community.comment.update", limits=PER_ADDRESS, viewer_limits=PER_ACCOUNT
)
async def comment_update(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await update_comment(req.ctx.lexicons, repo, req.body)


@router.procedure(
    "social.coves.community.comment.delete", limits=PER_ADDRESS, viewer_limits=PER_ACCOUNT
)
async def comment_delete(req: XRPCRequest) -> dict[str, Any]:
    async with caller_repo(req.ctx.user_repos, req.viewer) as repo:
        return await delete_comment(repo, req.body)
