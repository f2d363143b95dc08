"""Aggregators: registration, API keys, and the queries over their records."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.errors import XRPCError, invalid_request
from coves.params import one_str
from coves.read.aggregators import get_authorizations, get_services, list_for_community
from coves.read.communities import may_read, resolve
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _unavailable(what: str) -> XRPCError:
    return XRPCError(503, "NotEnoughResources", f"{what} is not available on this server")


@router.query("social.coves.aggregator.getServices")
async def aggregator_get_services(req: XRPCRequest) -> Any:
    return await get_services(req.ctx.db, req.ctx.read, req.params)


@router.query("social.coves.aggregator.getAuthorizations", auth=AuthPolicy.OPTIONAL)
async def aggregator_get_authorizations(req: XRPCRequest) -> Any:
    viewer = req.viewer.did if req.viewer is not None else None
    return await get_authorizations(req.ctx.db, req.ctx.read, req.params, viewer)


@router.query("social.coves.aggregator.listForCommunity", auth=AuthPolicy.OPTIONAL)
async def aggregator_list_for_community(req: XRPCRequest) -> Any:
    ident = one_str(req.params, "community", required=True)
    assert ident is not None
    community = await resolve(req.ctx.db, req.ctx.read, ident)
    viewer = req.viewer.did if req.viewer is not None else None
    if community is None or await may_read(req.ctx.db, viewer, community) is not None:
        raise XRPCError(404, "CommunityNotFound", "no such community")
    return await list_for_community(req.ctx.db, req.ctx.read, req.params, community)


@router.procedure(
    "social.coves.aggregator.register", auth=AuthPolicy.OPTIONAL, limits=("aggregator_register",)
)
async def aggregator_register(req: XRPCRequest) -> Any:
    body = req.body if isinstance(req.body, dict) else {}
    did, domain = body.get("did"), body.get("domain")
    if not isinstance(did, str) or not did.strip():
        raise invalid_request("did is required", "InvalidDID")
    if not isinstance(domain, str) or not domain.strip():
        raise invalid_request("domain is required", "InvalidDID")
    registrar = req.ctx.aggregators
    if registrar is None:
        raise _unavailable("aggregator registration")
    caller = req.viewer.did if req.viewer is not None else None
    return await registrar.register(did, domain, caller=caller)


def _key_owner(req: XRPCRequest) -> str:
    viewer = req.require_viewer()
    if viewer.method == "api_key":  # the authenticator refuses it first; kept explicit
        raise XRPCError(403, "Forbidden", "API keys cannot manage API keys; sign in")
    return viewer.did


@router.procedure("social.coves.aggregator.createApiKey")
async def aggregator_create_api_key(req: XRPCRequest) -> Any:
    if req.ctx.api_keys is None:
        raise _unavailable("API keys")
    return await req.ctx.api_keys.create(_key_owner(req))


@router.query("social.coves.aggregator.getApiKey", auth=AuthPolicy.REQUIRED)
async def aggregator_get_api_key(req: XRPCRequest) -> Any:
    if req.ctx.api_keys is None:
        raise _unavailable("API keys")
    return await req.ctx.api_keys.get(_key_owner(req))


@router.procedure("social.coves.aggregator.revokeApiKey")
async def aggregator_revoke_api_key(req: XRPCRequest) -> Any:
    if req.ctx.api_keys is None:
        raise _unavailable("API keys")
    return await req.ctx.api_keys.revoke(_key_owner(req))


@router.procedure("social.coves.aggregator.enable")
async def aggregator_enable(req: XRPCRequest) -> Any:
    if req.ctx.authorizations is None:
        raise _unavailable("aggregator authorization")
    return await req.ctx.authorizations.enable(req.require_viewer(), req.body)


@router.procedure("social.coves.aggregator.disable")
async def aggregator_disable(req: XRPCRequest) -> Any:
    if req.ctx.authorizations is None:
        raise _unavailable("aggregator authorization")
    return await req.ctx.authorizations.disable(req.require_viewer(), req.body)
