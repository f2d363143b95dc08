"""Record validation against the real lexicons: examples pass, each check fails with its path."""

from __future__ import annotations

from typing import Any

import pytest

from coves.lexicon import LexiconRegistry, LexiconValidationError
from tests.lexicon.examples import BLOB_CID, CID, EXAMPLES, example

POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
PROFILE = "social.coves.community.profile"
SUB = "social.coves.community.subscription"


def fails(registry: LexiconRegistry, nsid: str, value: object) -> LexiconValidationError:
    with pytest.raises(LexiconValidationError) as info:
        registry.validate_record(nsid, value)
    return info.value


@pytest.mark.parametrize(
    ("nsid", "index"),
    [(nsid, i) for nsid, values in EXAMPLES.items() for i in range(len(values))],
)
def test_examples_are_valid(registry: LexiconRegistry, nsid: str, index: int) -> None:
    registry.validate_record(nsid, example(nsid, index))


def test_error_shape(registry: LexiconRegistry) -> None:
    record = example(VOTE)
    del record["createdAt"]
    err = fails(registry, VOTE, record)
    assert isinstance(err, ValueError)
    assert err.path == "createdAt"
    assert err.message == "required field missing"
    assert str(err) == "createdAt: required field missing"


def test_record_must_be_object(registry: LexiconRegistry) -> None:
    err = fails(registry, VOTE, ["not", "an", "object"])
    assert err.path == "$"
    assert "must be an object" in err.message


def test_unknown_collection(registry: LexiconRegistry) -> None:
    assert fails(registry, "social.coves.nope.thing", {}).path == "$type"
    # A query is not a record either.
    assert fails(registry, "social.coves.community.get", {}).path == "$type"


@pytest.mark.parametrize("kind", ["social.coves.feed.vote", "social.coves.feed.vote#main"])
def test_record_type_may_name_main(registry: LexiconRegistry, kind: str) -> None:
    record = example(VOTE)
    record["$type"] = kind
    registry.validate_record(VOTE, record)
    del record["$type"]
    registry.validate_record(VOTE, record)


def test_record_type_mismatch(registry: LexiconRegistry) -> None:
    record = example(VOTE)
    record["$type"] = "social.coves.community.post"
    err = fails(registry, VOTE, record)
    assert err.path == "$type"
    assert "does not match" in err.message


def test_unknown_fields_are_allowed(registry: LexiconRegistry) -> None:
    record = example(VOTE)
    record["futureField"] = {"anything": [1, 2]}
    registry.validate_record(VOTE, record)


# -- scalar types -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda r: r.update(direction="sideways"), "direction", "must be one of: up, down"),
        (lambda r: r.update(direction=1), "direction", "must be a string, got integer"),
        (lambda r: r.update(createdAt="yesterday"), "createdAt", "datetime"),
        (lambda r: r.update(createdAt="2026-11-23T09:00:00"), "createdAt", "datetime"),
        (lambda r: r["subject"].update(uri="https://x.com/y"), "subject.uri", "AT-URI"),
        (lambda r: r["subject"].update(cid="!!"), "subject.cid", "must be a CID"),
        (lambda r: r["subject"].pop("cid"), "subject.cid", "required field missing"),
        (lambda r: r.update(subject="at://x"), "subject", "must be an object, got string"),
        (lambda r: r.update(subject=None), "subject", "must not be null"),
    ],
)
def test_vote_failures(registry: LexiconRegistry, mutate: Any, path: str, message: str) -> None:
    record = example(VOTE)
    mutate(record)
    err = fails(registry, VOTE, record)
    assert err.path == path
    assert message in err.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "at least 1"),
        (6, "at most 5"),
        ("3", "must be an integer, got string"),
        (3.0, "must be an integer, got number"),
        (True, "must be an integer, got boolean"),
    ],
)
def test_integer_bounds_and_type(registry: LexiconRegistry, value: object, message: str) -> None:
    record = example(SUB)
    record["contentVisibility"] = value
    err = fails(registry, SUB, record)
    assert err.path == "contentVisibility"
    assert message in err.message


def test_integer_bounds_inclusive(registry: LexiconRegistry) -> None:
    for value in (1, 5):
        record = example(SUB)
        record["contentVisibility"] = value
        registry.validate_record(SUB, record)


def test_boolean_type(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["federation"]["allowExternalDiscovery"] = "yes"
    err = fails(registry, PROFILE, record)
    assert err.path == "federation.allowExternalDiscovery"
    assert "must be a boolean" in err.message


def test_enum_is_closed_known_values_are_open(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["contentWarnings"] = ["something-new"]  # knownValues: accepted
    registry.validate_record(PROFILE, record)
    record["visibility"] = "secret"  # enum: rejected
    err = fails(registry, PROFILE, record)
    assert err.path == "visibility"
    assert "public, unlisted, private" in err.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("createdBy", "alice.example.com"),
        ("createdBy", "did:PLC:abc"),
        ("hostedBy", "did:web:"),
        ("language", "english!"),
    ],
)
def test_format_failures_on_profile(registry: LexiconRegistry, field: str, value: str) -> None:
    record = example(PROFILE)
    record[field] = value
    assert fails(registry, PROFILE, record).path == field


def test_uri_format(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["embed"]["external"]["uri"] = "not a uri"
    err = fails(registry, POST, record)
    assert err.path == "embed.external.uri"
    assert err.message == "must be a URI"


# -- strings: bytes vs graphemes ---------------------------------------------


def test_title_byte_limit_counts_utf8(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["title"] = "é" * 300  # 300 graphemes, 600 bytes: fine
    registry.validate_record(POST, record)
    record["title"] = "a" * 301  # 301 graphemes
    err = fails(registry, POST, record)
    assert err.path == "title"
    assert "at most 300 graphemes" in err.message


def test_emoji_counts_one_grapheme_but_many_bytes(registry: LexiconRegistry) -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"  # one grapheme, 25 bytes
    record = example(POST)
    record["title"] = family * 120  # 120 graphemes, 3000 bytes: exactly at the byte limit
    registry.validate_record(POST, record)
    record["title"] = family * 120 + "x"  # 3001 bytes, 121 graphemes
    err = fails(registry, POST, record)
    assert err.path == "title"
    assert "at most 3000 bytes" in err.message


def test_combining_marks_count_as_one_grapheme(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["content"] = "e\u0301" * 3000  # 3000 graphemes, 9000 bytes, 6000 code points
    registry.validate_record(COMMENT, record)
    record["content"] += "e\u0301"
    err = fails(registry, COMMENT, record)
    assert err.path == "content"
    assert "3000 graphemes" in err.message


def test_comment_byte_limit(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["content"] = "🎉" * 2999  # 2999 graphemes but 11996 bytes: fine
    registry.validate_record(COMMENT, record)
    record["content"] = "\u00e9" * 15001  # 30002 bytes: the byte limit is checked first
    err = fails(registry, COMMENT, record)
    assert err.path == "content"
    assert "at most 30000 bytes" in err.message


def test_crlf_is_one_grapheme(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["title"] = "\r\n" * 300
    registry.validate_record(POST, record)


# -- arrays ------------------------------------------------------------------


def test_array_max_length(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["langs"] = ["en", "fr", "de", "es"]
    err = fails(registry, POST, record)
    assert err.path == "langs"
    assert "at most 3 items" in err.message


def test_array_item_path(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["langs"] = ["en", "x y"]
    err = fails(registry, POST, record)
    assert err.path == "langs[1]"


def test_array_type(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["tags"] = "reading"
    assert fails(registry, POST, record).path == "tags"


def test_images_min_and_max(registry: LexiconRegistry) -> None:
    record = example(POST, 1)
    record["embed"]["images"] = []
    err = fails(registry, POST, record)
    assert err.path == "embed.images"
    assert "at least 1" in err.message
    record["embed"]["images"] = [example(POST, 1)["embed"]["images"][0]] * 9
    assert "at most 8" in fails(registry, POST, record).message


def test_nested_path_into_image_alt(registry: LexiconRegistry) -> None:
    record = example(POST, 1)
    images = record["embed"]["images"]
    images.append({"image": images[0]["image"], "alt": "x" * 1001})
    err = fails(registry, POST, record)
    assert err.path == "embed.images[2].alt"
    assert str(err).startswith("embed.images[2].alt: ")


def test_facet_path(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["facets"][0]["index"]["byteEnd"] = -1
    err = fails(registry, COMMENT, record)
    assert err.path == "facets[0].index.byteEnd"


# -- blobs -------------------------------------------------------------------


def test_blob_too_large(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["avatar"]["size"] = 1_000_001
    err = fails(registry, PROFILE, record)
    assert err.path == "avatar.size"
    assert "at most 1000000" in err.message


def test_blob_mime_rejected(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["avatar"]["mimeType"] = "image/gif"
    err = fails(registry, PROFILE, record)
    assert err.path == "avatar.mimeType"
    assert "not accepted" in err.message


def test_blob_accepts_wildcard(tmp_path: Any) -> None:
    from tests.lexicon.helpers import registry_from

    reg = registry_from(
        tmp_path,
        {
            "main": {
                "type": "record",
                "key": "tid",
                "record": {
                    "type": "object",
                    "properties": {"b": {"type": "blob", "accept": ["image/*"]}},
                },
            }
        },
    )
    reg.validate_record("com.example.test", {"b": {"cid": BLOB_CID, "mimeType": "image/avif"}})
    with pytest.raises(LexiconValidationError) as info:
        reg.validate_record("com.example.test", {"b": {"cid": BLOB_CID, "mimeType": "video/mp4"}})
    assert info.value.path == "b.mimeType"


@pytest.mark.parametrize(
    ("blob", "path"),
    [
        (
            {"$type": "blob", "ref": {"$link": "!!"}, "mimeType": "image/png", "size": 1},
            "avatar.ref",
        ),
        ({"$type": "blob", "ref": BLOB_CID, "mimeType": "image/png", "size": 1}, "avatar.ref"),
        ({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png"}, "avatar.size"),
        (
            {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": -1},
            "avatar.size",
        ),
        ({"$type": "blob", "ref": {"$link": BLOB_CID}, "size": 1}, "avatar.mimeType"),
        (
            {"$type": "image", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1},
            "avatar",
        ),
        ({"cid": 5, "mimeType": "image/png"}, "avatar.cid"),
        ("https://example.com/a.png", "avatar"),
    ],
)
def test_malformed_blobs(registry: LexiconRegistry, blob: object, path: str) -> None:
    record = example(PROFILE)
    record["avatar"] = blob
    assert fails(registry, PROFILE, record).path == path


def test_legacy_blob_has_no_size_check(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["avatar"] = {"cid": BLOB_CID, "mimeType": "image/png"}
    registry.validate_record(PROFILE, record)


def test_external_thumb_must_be_blob_not_url(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["embed"]["external"]["thumb"] = "https://example.com/t.jpg"
    err = fails(registry, POST, record)
    assert err.path == "embed.external.thumb"


def test_video_limits(registry: LexiconRegistry) -> None:
    record = example(POST, 2)
    record["embed"]["video"]["size"] = 100_000_001
    assert fails(registry, POST, record).path == "embed.video.size"
    record = example(POST, 2)
    record["embed"]["video"]["mimeType"] = "video/quicktime"
    assert fails(registry, POST, record).path == "embed.video.mimeType"


# -- unions in the real lexicons ----------------------------------------------


def test_embed_union_member_is_validated(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["embed"] = {"$type": "social.coves.embed.post", "post": {"uri": "nope", "cid": CID}}
    assert fails(registry, COMMENT, record).path == "embed.post.uri"


def test_embed_union_needs_type(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["embed"] = {"post": {"uri": "nope", "cid": CID}}
    err = fails(registry, COMMENT, record)
    assert err.path == "embed.$type"


def test_open_union_accepts_unknown_member(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["embed"] = {"$type": "com.example.embed.poll", "options": ["a", "b"]}
    registry.validate_record(POST, record)


def test_facet_feature_union(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    record["facets"][0]["features"][0] = {"$type": "social.coves.richtext.facet#mention"}
    assert fails(registry, COMMENT, record).path == "facets[0].features[0].did"


def test_self_labels(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["labels"] = {"values": [{"val": "nsfw", "neg": "no"}]}
    assert fails(registry, POST, record).path == "labels.values[0].neg"
    record["labels"] = {"values": [{"val": "custom-label"}]}  # knownValues are open
    registry.validate_record(POST, record)


def test_comment_reply_required(registry: LexiconRegistry) -> None:
    record = example(COMMENT)
    del record["reply"]["parent"]
    assert fails(registry, COMMENT, record).path == "reply.parent"
    record = example(COMMENT)
    del record["content"]
    assert fails(registry, COMMENT, record).path == "content"


def test_post_required_fields(registry: LexiconRegistry) -> None:
    for field in ("community", "author", "createdAt"):
        record = example(POST)
        del record[field]
        assert fails(registry, POST, record).path == field
    minimal = {k: example(POST)[k] for k in ("community", "author", "createdAt")}
    registry.validate_record(POST, minimal)


def test_unknown_must_be_object(registry: LexiconRegistry) -> None:
    record = example(POST)
    record["originalAuthor"] = "someone"
    assert fails(registry, POST, record).path == "originalAuthor"


def test_messages_do_not_echo_long_input(registry: LexiconRegistry) -> None:
    record = example(PROFILE)
    record["avatar"]["mimeType"] = "image/" + "x" * 5000
    assert len(str(fails(registry, PROFILE, record))) < 200
    record = example(VOTE)
    record["$type"] = "social.coves." + "x" * 5000
    assert len(str(fails(registry, VOTE, record))) < 200
