"""social.coves.actor.signup: accounts on this instance's PDS."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.writes.signup import signup
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


@router.procedure("social.coves.actor.signup", auth=AuthPolicy.NONE, limits=("signup",))
async def actor_signup(req: XRPCRequest) -> dict[str, Any]:
    return await signup(req.ctx.db, req.ctx.settings, req.ctx.pds.instance, req.body)
