"""Posts by URI (permalinks)."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.read.post_get import get_posts
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.query(
    "social.coves.community.post.get",
    auth=AuthPolicy.OPTIONAL,
    cache_seconds=2.0,
    # Viewer state here is the viewer's own votes and blocks, as on the timeline.
    viewer_cache_seconds=2.0,
)
async def post_get(req: XRPCRequest) -> Any:
    viewer = req.viewer.did if req.viewer is not None else None
    return await get_posts(req.ctx.db, req.ctx.read, req.params, viewer)
