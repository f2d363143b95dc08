"""Valid example records, one or more per record lexicon; tests mutate copies."""

from __future__ import annotations

import copy
from typing import Any

COMMUNITY = "did:plc:community1234567890abc"
USER = "did:plc:user1234567890abcdefg"
INSTANCE = "did:web:coves.social"
CID = "bafyreihpapd6cjn2kt4jz6qkoyvy5frmqixqpwm3vs7b6gbdflv3sx4cuy"
BLOB_CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
POST_URI = f"at://{COMMUNITY}/social.coves.community.post/3kabcdefghijk"
COMMENT_URI = f"at://{USER}/social.coves.community.comment/3kabcdefghijl"
NOW = "2026-11-23T09:00:00.000Z"


def blob(mime: str = "image/jpeg", size: int = 50_000) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": mime, "size": size}


def strong(uri: str = POST_URI) -> dict[str, str]:
    return {"uri": uri, "cid": CID}


VOTE: dict[str, Any] = {
    "$type": "social.coves.feed.vote",
    "subject": strong(),
    "direction": "up",
    "createdAt": NOW,
}

COMMENT: dict[str, Any] = {
    "$type": "social.coves.community.comment",
    "reply": {"root": strong(), "parent": strong(COMMENT_URI)},
    "content": "I agree with @alice.example.com — see https://example.com ✨",
    "facets": [
        {
            "index": {"byteStart": 14, "byteEnd": 32},
            "features": [{"$type": "social.coves.richtext.facet#mention", "did": USER}],
        }
    ],
    "embed": {"$type": "social.coves.embed.post", "post": strong()},
    "langs": ["en"],
    "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "spoiler"}]},
    "createdAt": NOW,
}

POST: dict[str, Any] = {
    "$type": "social.coves.community.post",
    "community": COMMUNITY,
    "author": USER,
    "title": "Weekly discussion thread",
    "content": "What is everyone reading this week? Links welcome.",
    "facets": [
        {
            "index": {"byteStart": 0, "byteEnd": 4},
            "features": [
                {"$type": "social.coves.richtext.facet#link", "uri": "https://example.com/a"},
                {"$type": "social.coves.richtext.facet#tag", "tag": "books"},
            ],
        }
    ],
    "embed": {
        "$type": "social.coves.embed.external",
        "external": {
            "uri": "https://example.com/article",
            "title": "An article",
            "description": "About things",
            "thumb": blob(),
            "embedType": "article",
            "domain": "example.com",
        },
    },
    "langs": ["en", "pt-BR"],
    "labels": {"values": [{"val": "nsfw"}, {"val": "violence", "neg": True}]},
    "tags": ["reading", "weekly"],
    "originalAuthor": {"handle": "someone", "instance": "lemmy"},
    "createdAt": NOW,
}

IMAGES_POST: dict[str, Any] = {
    **POST,
    "embed": {
        "$type": "social.coves.embed.images",
        "images": [
            {"image": blob("image/png"), "alt": "a cat", "aspectRatio": {"width": 4, "height": 3}},
            {"image": blob("image/gif"), "alt": ""},
        ],
    },
}

VIDEO_POST: dict[str, Any] = {
    **POST,
    "embed": {"$type": "social.coves.embed.video#main", "video": blob("video/mp4", 50_000_000)},
}

COMMUNITY_PROFILE: dict[str, Any] = {
    "$type": "social.coves.community.profile",
    "name": "gaming",
    "displayName": "Gaming 🎮",
    "description": "All about games.",
    "avatar": blob("image/png", 900_000),
    "banner": blob("image/webp", 1_900_000),
    "createdBy": USER,
    "hostedBy": INSTANCE,
    "visibility": "public",
    "moderationType": "moderator",
    "contentWarnings": ["nsfw", "gore"],
    "rules": ["Be kind"],
    "categories": ["games"],
    "language": "en",
    "federation": {"allowExternalDiscovery": True},
    "createdAt": NOW,
}

SUBSCRIPTION: dict[str, Any] = {
    "$type": "social.coves.community.subscription",
    "subject": COMMUNITY,
    "contentVisibility": 3,
    "createdAt": NOW,
}

BLOCK: dict[str, Any] = {
    "$type": "social.coves.community.block",
    "subject": COMMUNITY,
    "createdAt": NOW,
}

ACTOR_BLOCK: dict[str, Any] = {
    "$type": "social.coves.actor.block",
    "subject": "did:plc:blockedaccount0000000000",
    "createdAt": NOW,
}

ACTOR_PROFILE: dict[str, Any] = {
    "$type": "social.coves.actor.profile",
    "displayName": "Alice",
    "description": "Hello",
    "avatar": {"cid": BLOB_CID, "mimeType": "image/jpeg"},
    "createdAt": NOW,
}

AGGREGATOR_SERVICE: dict[str, Any] = {
    "$type": "social.coves.aggregator.service",
    "did": "did:plc:aggregator12345678901",
    "displayName": "Kagi News",
    "description": "Daily news digests",
    "configSchema": {"type": "object", "properties": {"topics": {"type": "array"}}},
    "sourceUrl": "https://github.com/example/aggregator",
    "maintainer": USER,
    "createdAt": NOW,
}

AGGREGATOR_AUTHORIZATION: dict[str, Any] = {
    "$type": "social.coves.aggregator.authorization",
    "aggregatorDid": "did:plc:aggregator12345678901",
    "communityDid": COMMUNITY,
    "enabled": True,
    "config": {"topics": ["world"]},
    "createdBy": USER,
    "createdAt": NOW,
}

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "social.coves.feed.vote": [VOTE],
    "social.coves.community.comment": [COMMENT],
    "social.coves.community.post": [POST, IMAGES_POST, VIDEO_POST],
    "social.coves.community.profile": [COMMUNITY_PROFILE],
    "social.coves.community.subscription": [SUBSCRIPTION],
    "social.coves.community.block": [BLOCK],
    "social.coves.actor.profile": [ACTOR_PROFILE],
    "social.coves.actor.block": [ACTOR_BLOCK],
    "social.coves.aggregator.service": [AGGREGATOR_SERVICE],
    "social.coves.aggregator.authorization": [AGGREGATOR_AUTHORIZATION],
}


def example(nsid: str, index: int = 0) -> dict[str, Any]:
    return copy.deepcopy(EXAMPLES[nsid][index])
