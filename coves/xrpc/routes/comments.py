"""social.coves.community.comment.getComments: a post's threaded comments."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.threads.assemble import get_comments as assemble_thread
from coves.threads.params import parse_thread_params
from coves.xrpc.routing import Router, XRPCRequest

router = Router()

GET_COMMENTS = "social.coves.community.comment.getComments"


@router.query(GET_COMMENTS, auth=AuthPolicy.OPTIONAL, limits=("comments",), cache_seconds=2.0)
async def get_comments(req: XRPCRequest) -> dict[str, Any]:
    return await assemble_thread(req.ctx, parse_thread_params(req.params), req.viewer)
