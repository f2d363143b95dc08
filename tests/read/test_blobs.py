from __future__ import annotations

from coves.read.views.blobs import BlobUrls, blob_cid
from coves.search import similarity, trigrams

CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
BLOB = {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": 10}
DEFAULT = "{pds}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"


def test_default_template_escapes_did_and_cid() -> None:
    urls = BlobUrls(DEFAULT)
    url = urls.url(BLOB, "did:web:example.com%3A8080", "https://pds.example/")
    assert url == (
        "https://pds.example/xrpc/com.atproto.sync.getBlob"
        f"?did=did%3Aweb%3Aexample.com%253A8080&cid={CID}"
    )


def test_cdn_template_needs_no_pds() -> None:
    urls = BlobUrls("https://cdn.example/img/avatar/plain/{did}/{cid}@jpeg")
    assert urls.url(BLOB, "did:plc:abc", None) == (
        f"https://cdn.example/img/avatar/plain/did%3Aplc%3Aabc/{CID}@jpeg"
    )


def test_pds_template_without_pds_gives_no_url() -> None:
    assert BlobUrls(DEFAULT).url(BLOB, "did:plc:abc", None) is None


def test_legacy_and_malformed_blob_refs() -> None:
    assert blob_cid({"cid": CID, "mimeType": "image/jpeg"}) == CID
    assert blob_cid({"$type": "blob", "ref": {"$link": "not a cid/../x"}}) is None
    assert blob_cid({"$type": "blob", "ref": CID}) is None
    assert blob_cid("https://example.com/x.png") is None
    assert blob_cid(None) is None


def test_rewrite_replaces_nested_blobs_and_drops_unbuildable() -> None:
    urls = BlobUrls(DEFAULT)
    embed = {
        "$type": "social.coves.embed.images",
        "images": [{"image": BLOB, "alt": "a"}, {"image": {"$type": "blob"}, "alt": "b"}],
        "external": {"uri": "https://x.example", "thumb": BLOB, "title": None},
    }
    out = urls.rewrite(embed, "did:plc:c", "https://pds")
    expected = f"https://pds/xrpc/com.atproto.sync.getBlob?did=did%3Aplc%3Ac&cid={CID}"
    assert out["images"][0] == {"image": expected, "alt": "a"}
    assert out["images"][1]["image"] == {"$type": "blob"}  # not a blob ref: left as data
    assert out["external"]["thumb"] == expected
    assert out["external"]["title"] is None
    assert urls.rewrite({"thumb": BLOB}, "did:plc:c", None) == {}


def test_trigrams_match_pg_trgm() -> None:
    # pg_trgm: show_trgm('Cat') = {"  c"," ca","at ",cat}
    assert trigrams("Cat") == ["  c", " ca", "at ", "cat"]
    assert trigrams("a-b") == ["  a", "  b", " a ", " b "]
    assert trigrams("!!!") == []
    assert similarity(trigrams("gaming"), trigrams("gaming")) == 1.0
    assert 0 < similarity(trigrams("gaming"), trigrams("games")) < 1
