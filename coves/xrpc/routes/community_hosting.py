"""Community writes: create, update and (soft) delete communities hosted here."""

from __future__ import annotations

from typing import Any

from coves.xrpc.routing import Router, XRPCRequest

router = Router()

# Room for a base64 avatar (1 MB) and banner (2 MB) next to the other fields.
IMAGE_BODY_BYTES = 4 * 1024 * 1024


@router.procedure("social.coves.community.create", max_body=IMAGE_BODY_BYTES)
async def community_create(req: XRPCRequest) -> Any:
    return await req.ctx.hosting.create(req.require_viewer().did, req.body or {})


@router.procedure("social.coves.community.update", max_body=IMAGE_BODY_BYTES)
async def community_update(req: XRPCRequest) -> Any:
    return await req.ctx.hosting.update(req.require_viewer().did, req.body or {})


@router.procedure("social.coves.community.delete")
async def community_delete(req: XRPCRequest) -> Any:
    return await req.ctx.hosting.delete(req.require_viewer().did, req.body or {})
