"""social.coves.community.comment.getComments: a post's threaded comments."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.read.comments.params import parse_thread_params
from coves.read.comments.thread import get_comments as thread
from coves.xrpc.routing import Router, XRPCRequest

router = Router()

GET_COMMENTS = "social.coves.community.comment.getComments"


@router.query(GET_COMMENTS, auth=AuthPolicy.OPTIONAL, limits=("comments",), cache_seconds=2.0)
async def get_comments(req: XRPCRequest) -> dict[str, Any]:
    viewer = req.viewer.did if req.viewer is not None else None
    return await thread(req.ctx.db, req.ctx.read, parse_thread_params(req.params), viewer)
