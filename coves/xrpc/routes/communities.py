"""Community reads: get, list, search."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.communities import get_community, list_communities, search_communities
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _viewer(req: XRPCRequest) -> str | None:
    return req.viewer.did if req.viewer is not None else None


@router.query("social.coves.community.get", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_get(req: XRPCRequest) -> Any:
    return await get_community(req.ctx.db, req.ctx.read, req.params, _viewer(req))


@router.query("social.coves.community.list", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_list(req: XRPCRequest) -> Any:
    return await list_communities(req.ctx.db, req.ctx.read, req.params, _viewer(req))


@router.query("social.coves.community.search", auth=AuthPolicy.OPTIONAL, cache_seconds=5.0)
async def community_search(req: XRPCRequest) -> Any:
    return await search_communities(req.ctx.db, req.ctx.read, req.params, _viewer(req))
