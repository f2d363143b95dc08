"""Community reads: get, list, search, the viewer's blocked communities."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.read import communities
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _viewer(req: XRPCRequest) -> str | None:
    return req.viewer.did if req.viewer is not None else None


@router.query("social.coves.community.get", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_get(req: XRPCRequest) -> Any:
    return await communities.get_community(req.ctx.db, req.ctx.read, req.params, _viewer(req))


@router.query("social.coves.community.list", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_list(req: XRPCRequest) -> Any:
    return await communities.list_communities(req.ctx.db, req.ctx.read, req.params, _viewer(req))


@router.query("social.coves.community.search", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_search(req: XRPCRequest) -> Any:
    ctx = req.ctx
    return await communities.search_communities(ctx.db, ctx.read, req.params, _viewer(req))


@router.query("social.coves.community.getBlockedCommunities", auth=AuthPolicy.REQUIRED)
async def blocked_communities(req: XRPCRequest) -> Any:
    viewer = req.require_viewer().did
    return await communities.blocked_communities(req.ctx.db, req.ctx.read, req.params, viewer)
