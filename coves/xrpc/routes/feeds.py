"""Feeds: community, timeline, discover and an actor's posts."""

from __future__ import annotations

from typing import Any

from coves.atproto.syntax import is_valid_did, is_valid_handle
from coves.auth.base import AuthPolicy
from coves.communities import is_visible, resolve_cached
from coves.db.queries import communities as community_sql
from coves.db.queries import feeds as feed_sql
from coves.db.queries.feeds import FeedScope
from coves.errors import XRPCError, invalid_request
from coves.feeds import feed_page, feed_params, fixed
from coves.params import one_str
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _viewer(req: XRPCRequest) -> str | None:
    return req.viewer.did if req.viewer is not None else None


@router.query("social.coves.feed.getCommunity", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_community_feed(req: XRPCRequest) -> Any:
    fp = feed_params(req.params)
    ident = one_str(req.params, "community", required=True)
    assert ident is not None
    svc = req.ctx.read
    db = req.ctx.db
    row = await resolve_cached(db, svc, ident)
    viewer = _viewer(req)
    if row is None or not is_visible(row):
        raise XRPCError(404, "CommunityNotFound", "community not found")
    if row["visibility"] == "private":
        # A private community's posts are for its subscribers only; to anyone
        # else it does not exist.
        subscribed: dict[str, str] = {}
        if viewer is not None:
            subscribed, _ = await community_sql.viewer_state(db, viewer, [row["did"]])
        if row["did"] not in subscribed:
            raise XRPCError(404, "CommunityNotFound", "community not found")
    scope = FeedScope("community", row["did"])
    return await feed_page(svc, db, f"community:{row['did']}", fixed(scope), fp, viewer=viewer)


router.alias("social.coves.communityFeed.getCommunity", "social.coves.feed.getCommunity")


@router.query("social.coves.feed.getTimeline", auth=AuthPolicy.REQUIRED, viewer_cache_seconds=2.0)
async def get_timeline(req: XRPCRequest) -> Any:
    fp = feed_params(req.params)
    viewer = req.require_viewer().did
    db = req.ctx.db

    async def scope() -> FeedScope:
        return FeedScope("timeline", await feed_sql.timeline_communities(db, viewer))

    return await feed_page(req.ctx.read, db, f"timeline:{viewer}", scope, fp, viewer=viewer)


@router.query("social.coves.feed.getDiscover", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_discover(req: XRPCRequest) -> Any:
    fp = feed_params(req.params)
    scope = fixed(FeedScope("discover"))
    return await feed_page(req.ctx.read, req.ctx.db, "discover:", scope, fp, viewer=_viewer(req))


@router.query("social.coves.actor.getPosts", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_actor_posts(req: XRPCRequest) -> Any:
    fp = feed_params(req.params)
    actor = one_str(req.params, "actor", required=True)
    assert actor is not None
    actor = actor.removeprefix("@")
    if actor.startswith("did:"):
        if not is_valid_did(actor):
            raise invalid_request("actor: not a valid DID")
    else:
        actor = actor.lower()
        if not is_valid_handle(actor):
            raise invalid_request("actor must be a DID or handle")
    db = req.ctx.db
    did = await community_sql.actor_did(db, actor)
    if did is None or not await community_sql.actor_active(db, did):
        raise XRPCError(404, "NotFound", "actor not found")
    scope = fixed(FeedScope("author", did))
    return await feed_page(req.ctx.read, db, f"author:{did}", scope, fp, viewer=_viewer(req))
