"""View helpers: timestamps, blob URLs, placeholders (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from coves.atproto.syntax import format_datetime
from coves.views.comment import _ts, blob_cid, embed_with_urls, make_blob_url

TEMPLATE = "{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"


def test_timestamps_match_the_canonical_format() -> None:
    for value in (
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 5, 123999, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ):
        assert _ts(value) == format_datetime(value)
    assert _ts(datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))).endswith(
        "T12:00:00.000Z"
    )


def test_blob_refs_in_both_forms() -> None:
    assert blob_cid({"$type": "blob", "ref": {"$link": "bafkreia"}, "mimeType": "x"}) == "bafkreia"
    assert blob_cid({"cid": "bafkreib", "mimeType": "image/png"}) == "bafkreib"
    assert blob_cid({"$type": "blob", "ref": "bafkreia"}) is None
    assert blob_cid({"cid": "bafkreib"}) is None
    assert blob_cid("bafkreic") is None


def test_blob_urls_escape_and_need_a_pds() -> None:
    build = make_blob_url(TEMPLATE)
    assert build("https://pds.example/", "did:plc:abc", "bafk&x") == (
        "https://pds.example/xrpc/com.atproto.sync.getBlob?did=did:plc:abc&cid=bafk%26x"
    )
    assert build(None, "did:plc:abc", "bafk") is None
    assert build("javascript:alert(1)", "did:plc:abc", "bafk") is None
    cdn = make_blob_url("https://cdn.example/img/{did}/{cid}")
    assert cdn(None, "did:plc:abc", "bafk") == "https://cdn.example/img/did:plc:abc/bafk"


def test_embed_blobs_become_urls_and_unbuildable_ones_are_dropped() -> None:
    build = make_blob_url(TEMPLATE)
    blob = {"$type": "blob", "ref": {"$link": "bafkimg"}, "mimeType": "image/png", "size": 1}
    embed = {
        "$type": "social.coves.embed.external",
        "external": {"uri": "https://example.com", "thumb": blob, "title": None},
    }
    out = embed_with_urls(embed, "https://pds.example", "did:plc:abc", build)
    assert out["external"]["thumb"].endswith("cid=bafkimg")
    assert out["external"]["title"] is None
    dropped = embed_with_urls(embed, None, "did:plc:abc", build)
    assert "thumb" not in dropped["external"]
    assert dropped["external"]["uri"] == "https://example.com"
