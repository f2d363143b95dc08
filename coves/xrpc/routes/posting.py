"""Writing posts: create, update, delete, and image uploads for them."""

from __future__ import annotations

from typing import Any

from coves.errors import XRPCError
from coves.media.images import IMAGE_UPLOAD_MAX_BYTES
from coves.params import one_str
from coves.posting.service import PostService
from coves.xrpc.routing import RawBody, Router, XRPCRequest

router = Router()


def _service(req: XRPCRequest) -> PostService:
    if req.ctx.posts is None:
        raise XRPCError(503, "NotEnoughResources", "posting is not available on this server")
    return req.ctx.posts


@router.procedure("social.coves.community.post.create", viewer_limits=("user_writes",))
async def post_create(req: XRPCRequest) -> Any:
    return await _service(req).create(req.require_viewer(), req.body)


@router.procedure("social.coves.community.post.update", viewer_limits=("user_writes",))
async def post_update(req: XRPCRequest) -> Any:
    return await _service(req).update(req.require_viewer(), req.body)


@router.procedure("social.coves.community.post.delete", viewer_limits=("user_writes",))
async def post_delete(req: XRPCRequest) -> Any:
    return await _service(req).delete(req.require_viewer(), req.body)


@router.procedure(
    "social.coves.community.post.uploadImage",
    limits=("uploads",),
    viewer_limits=("user_writes",),
    raw_body=True,
    max_body=IMAGE_UPLOAD_MAX_BYTES,
)
async def post_upload_image(req: XRPCRequest) -> Any:
    community = one_str(req.params, "community", required=True)
    assert community is not None and isinstance(req.body, RawBody)
    return await _service(req).upload_image(req.require_viewer(), community, req.body.data)
