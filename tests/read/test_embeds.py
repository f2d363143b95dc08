"""Embed views: every embed kind the lexicons define, as the clients switch on it."""

from __future__ import annotations

from typing import Any

import pytest

from coves.lexicon.registry import LexiconRegistry
from coves.read.views.blobs import BlobUrls
from coves.read.views.embed import embed_view
from tests.support.factories import BLOB_CID, blob

DID, PDS = "did:plc:owner", "https://pds.example"
PROXY = BlobUrls("https://coves.social/img/{preset}/plain/{did}/{cid}")


def url(preset: str) -> str:
    return f"https://coves.social/img/{preset}/plain/did%3Aplc%3Aowner/{BLOB_CID}"


def view(embed: Any, blobs: BlobUrls = PROXY) -> Any:
    return embed_view(embed, blobs, DID, PDS)


def test_images_have_thumb_and_fullsize_urls() -> None:
    embed = {
        "$type": "social.coves.embed.images",
        "images": [
            {"image": blob(), "alt": "a cat", "aspectRatio": {"width": 4, "height": 3}},
            {"image": blob()},
            {"image": {"not": "a blob"}},  # dropped: no URL can be built
        ],
    }
    assert view(embed) == {
        "$type": "social.coves.embed.images#view",
        "images": [
            {
                "thumb": url("thumb"),
                "fullsize": url("fullsize"),
                "alt": "a cat",
                "aspectRatio": {"width": 4, "height": 3},
            },
            {"thumb": url("thumb"), "fullsize": url("fullsize"), "alt": ""},
        ],
    }
    assert view({"$type": "social.coves.embed.images", "images": [{"image": None}]}) is None


def test_external_card_with_thumb_url_gallery_and_sources() -> None:
    embed = {
        "$type": "social.coves.embed.external",
        "external": {
            "uri": "https://example.com/a",
            "title": "A",
            "description": "about a",
            "thumb": blob(),
            "domain": "example.com",
            "embedType": "article",
            "provider": "opengraph",
            "images": [{"image": blob(), "alt": "g"}],
            "totalCount": 9,
            "sources": [{"uri": "https://b.example", "title": "B"}, {"nope": 1}],
        },
    }
    assert view(embed) == {
        "$type": "social.coves.embed.external#view",
        "external": {
            "uri": "https://example.com/a",
            "title": "A",
            "description": "about a",
            "domain": "example.com",
            "embedType": "article",
            "provider": "opengraph",
            "thumb": url("thumb"),
            "images": [{"thumb": url("thumb"), "fullsize": url("fullsize"), "alt": "g"}],
            "totalCount": 9,
            "sources": [{"uri": "https://b.example", "title": "B"}],
        },
    }
    assert view({"$type": "social.coves.embed.external", "external": {"title": "no uri"}}) is None


def test_video_and_quoted_post() -> None:
    video = {"$type": "social.coves.embed.video", "video": blob(), "alt": "clip"}
    assert view(video) == {
        "$type": "social.coves.embed.video#view",
        "cid": BLOB_CID,
        "video": url("video"),
        "alt": "clip",
    }
    quoted = {
        "$type": "social.coves.embed.post",
        "post": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": BLOB_CID},
    }
    assert view(quoted) == {
        "$type": "social.coves.embed.post#view",
        "post": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": BLOB_CID},
    }
    assert view({"$type": "social.coves.embed.post", "post": "at://x"}) is None


def test_unknown_kinds_keep_their_type_with_blob_urls() -> None:
    other = {"$type": "app.example.embed", "picture": blob(), "n": 1}
    assert view(other) == {"$type": "app.example.embed", "picture": url("fullsize"), "n": 1}
    assert view("not an object") is None
    assert view({"images": []}) == {"images": []}  # no $type: rewritten as is


def test_without_a_pds_a_pds_template_drops_the_blob() -> None:
    pds_only = BlobUrls("{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}")
    embed = {"$type": "social.coves.embed.images", "images": [{"image": blob()}]}
    assert embed_view(embed, pds_only, DID, None) is None
    shown = embed_view(embed, pds_only, DID, PDS)
    assert shown is not None
    assert shown["images"][0]["thumb"] == (
        f"{PDS}/xrpc/com.atproto.sync.getBlob?did=did%3Aplc%3Aowner&cid={BLOB_CID}"
    )


@pytest.mark.parametrize("kind", ["images", "external", "video", "post"])
def test_every_view_kind_is_declared_by_the_lexicons(kind: str) -> None:
    registry = LexiconRegistry.load()
    document = registry.document(f"social.coves.embed.{kind}")
    assert "view" in document["defs"]
