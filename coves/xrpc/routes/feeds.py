"""Feeds: community, timeline, discover, an actor's posts, and post search."""

from __future__ import annotations

from typing import Any

from coves.auth.base import AuthPolicy
from coves.read import feeds
from coves.read.search import search_posts
from coves.xrpc.routing import Router, XRPCRequest

router = Router()


def _viewer(req: XRPCRequest) -> str | None:
    return req.viewer.did if req.viewer is not None else None


@router.query("social.coves.feed.getCommunity", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_community_feed(req: XRPCRequest) -> Any:
    return await feeds.community_feed(req.ctx.db, req.ctx.read, req.params, _viewer(req))


router.alias("social.coves.communityFeed.getCommunity", "social.coves.feed.getCommunity")


@router.query("social.coves.feed.getTimeline", auth=AuthPolicy.REQUIRED, viewer_cache_seconds=2.0)
async def get_timeline(req: XRPCRequest) -> Any:
    return await feeds.timeline(req.ctx.db, req.ctx.read, req.params, req.require_viewer().did)


@router.query("social.coves.feed.getDiscover", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_discover(req: XRPCRequest) -> Any:
    return await feeds.discover(req.ctx.db, req.ctx.read, req.params, _viewer(req))


@router.query("social.coves.actor.getPosts", auth=AuthPolicy.OPTIONAL, cache_seconds=2.0)
async def get_actor_posts(req: XRPCRequest) -> Any:
    ctx = req.ctx
    return await feeds.actor_posts(ctx.db, ctx.read, ctx.identity, req.params, _viewer(req))


@router.query(
    "social.coves.feed.searchPosts", auth=AuthPolicy.OPTIONAL, limits=("search",), cache_seconds=2.0
)
async def search(req: XRPCRequest) -> Any:
    return await search_posts(req.ctx.db, req.ctx.read, req.params, _viewer(req))
