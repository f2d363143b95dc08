"""Actor reads: profiles, an actor's comments, the viewer's blocked users, handles."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.read import actors
from coves.read.comments.actor import actor_comments
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _viewer(req: XRPCRequest) -> str | None:
    return req.viewer.did if req.viewer is not None else None


@router.query("social.coves.actor.getProfile", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def get_profile(req: XRPCRequest) -> Any:
    ctx = req.ctx
    return await actors.get_profile(ctx.db, ctx.read, ctx.identity, req.params, _viewer(req))


@router.query("social.coves.actor.getComments", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_comments(req: XRPCRequest) -> Any:
    ctx = req.ctx
    return await actor_comments(ctx.db, ctx.read, ctx.identity, req.params, _viewer(req))


@router.query("social.coves.actor.getBlockedUsers", auth=AuthPolicy.REQUIRED)
async def get_blocked_users(req: XRPCRequest) -> Any:
    return await actors.blocked_users(req.ctx.db, req.params, req.require_viewer().did)


@router.query("com.atproto.identity.resolveHandle", auth=AuthPolicy.NONE, cache_seconds=5.0)
async def resolve_handle(req: XRPCRequest) -> Any:
    return await actors.resolve_handle(req.ctx.db, req.ctx.identity, req.params)
