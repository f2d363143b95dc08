"""Validator mechanics on purpose-built lexicons: unions, refs, nullable, bytes, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from coves.lexicon import LexiconRegistry, LexiconValidationError
from tests.lexicon.examples import CID
from tests.lexicon.helpers import NSID, record, registry_from


def fails(reg: LexiconRegistry, value: object) -> LexiconValidationError:
    with pytest.raises(LexiconValidationError) as info:
        reg.validate_record(NSID, value)
    return info.value


@pytest.fixture
def unions(tmp_path: Path) -> LexiconRegistry:
    return registry_from(
        tmp_path,
        {
            "main": record(
                {
                    "open": {"type": "union", "refs": ["#a", "com.example.other"]},
                    "closed": {"type": "union", "refs": ["#a", "#b"], "closed": True},
                }
            ),
            "a": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
            "b": {"type": "object", "properties": {"y": {"type": "string"}}},
        },
        {
            "com.example.other": {
                "main": {
                    "type": "object",
                    "required": ["z"],
                    "properties": {"z": {"type": "boolean"}},
                }
            }
        },
    )


def test_local_and_cross_file_members(unions: LexiconRegistry) -> None:
    unions.validate_record(NSID, {"open": {"$type": "com.example.test#a", "x": 1}})
    unions.validate_record(NSID, {"open": {"$type": "com.example.other", "z": True}})
    unions.validate_record(NSID, {"open": {"$type": "com.example.other#main", "z": True}})
    assert fails(unions, {"open": {"$type": "com.example.other", "z": 1}}).path == "open.z"
    assert fails(unions, {"open": {"$type": "com.example.test#a"}}).path == "open.x"


def test_open_union_accepts_unknown_type(unions: LexiconRegistry) -> None:
    unions.validate_record(NSID, {"open": {"$type": "com.example.future#thing", "q": 1}})


def test_closed_union_rejects_unknown_type(unions: LexiconRegistry) -> None:
    err = fails(unions, {"closed": {"$type": "com.example.other", "z": True}})
    assert err.path == "closed.$type"
    assert "com.example.test#a" in err.message
    unions.validate_record(NSID, {"closed": {"$type": "com.example.test#b", "y": "ok"}})


def test_union_member_needs_object_and_type(unions: LexiconRegistry) -> None:
    assert fails(unions, {"open": "str"}).path == "open"
    assert fails(unions, {"open": {"x": 1}}).path == "open.$type"
    assert fails(unions, {"open": {"$type": 5}}).path == "open.$type"


def test_nullable_and_required(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {"main": record({"n": {"type": "string"}, "m": {"type": "string"}}, ["n"], nullable=["n"])},
    )
    reg.validate_record(NSID, {"n": None})
    reg.validate_record(NSID, {"n": "x", "m": "y"})
    assert fails(reg, {}).path == "n"
    err = fails(reg, {"n": None, "m": None})
    assert err.path == "m"
    assert err.message == "must not be null"


def test_recursive_refs(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {
            "main": record({"tree": {"type": "ref", "ref": "#node"}}),
            "node": {
                "type": "object",
                "required": ["v"],
                "properties": {
                    "v": {"type": "integer"},
                    "kids": {"type": "array", "items": {"type": "ref", "ref": "#node"}},
                },
            },
        },
    )
    reg.validate_record(NSID, {"tree": {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}})
    err = fails(reg, {"tree": {"v": 1, "kids": [{"v": 2, "kids": [{"v": "3"}]}]}})
    assert err.path == "tree.kids[0].kids[0].v"


def test_bytes_and_cid_link(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {
            "main": record(
                {
                    "data": {"type": "bytes", "maxLength": 4, "minLength": 1},
                    "link": {"type": "cid-link"},
                }
            )
        },
    )
    reg.validate_record(NSID, {"data": {"$bytes": "AQID"}, "link": {"$link": CID}})
    reg.validate_record(NSID, {"data": {"$bytes": "AQIDBA"}})  # unpadded base64, 4 bytes
    assert "at most 4 bytes" in fails(reg, {"data": {"$bytes": "AQIDBAU"}}).message
    assert "at least 1" in fails(reg, {"data": {"$bytes": ""}}).message
    assert fails(reg, {"data": {"$bytes": "!!!"}}).path == "data.$bytes"
    assert fails(reg, {"data": "AQID"}).path == "data"
    assert fails(reg, {"link": {"$link": "??"}}).path == "link.$link"
    assert fails(reg, {"link": CID}).path == "link"


def test_integer_enum_const_and_string_const(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {
            "main": record(
                {
                    "e": {"type": "integer", "enum": [1, 2, 4]},
                    "c": {"type": "integer", "const": 7},
                    "s": {"type": "string", "const": "fixed"},
                    "t": {"type": "boolean", "const": True},
                    "g": {"type": "string", "minGraphemes": 2, "minLength": 3},
                }
            )
        },
    )
    reg.validate_record(NSID, {"e": 4, "c": 7, "s": "fixed", "t": True, "g": "abc"})
    assert fails(reg, {"e": 3}).path == "e"
    assert fails(reg, {"c": 8}).path == "c"
    assert fails(reg, {"s": "other"}).path == "s"
    assert fails(reg, {"t": False}).path == "t"
    assert "graphemes" in fails(reg, {"g": "\u00e9\u0301\u0301"}).message  # 1 grapheme, 6 bytes
    assert "bytes" in fails(reg, {"g": "ab"}).message


def test_token_reference(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {
            "main": record({"reason": {"type": "ref", "ref": "#spam"}}),
            "spam": {"type": "token", "description": "spam"},
        },
    )
    reg.validate_record(NSID, {"reason": "com.example.test#spam"})
    assert fails(reg, {"reason": "com.example.test#other"}).path == "reason"


def test_string_formats(tmp_path: Path) -> None:
    formats = [
        "did",
        "handle",
        "at-identifier",
        "at-uri",
        "nsid",
        "cid",
        "datetime",
        "uri",
        "language",
        "tid",
        "record-key",
    ]
    reg = registry_from(
        tmp_path, {"main": record({f: {"type": "string", "format": f} for f in formats})}
    )
    good = {
        "did": "did:web:example.com",
        "handle": "alice.example.com",
        "at-identifier": "did:plc:abc123",
        "at-uri": "at://alice.example.com/app.bsky.feed.post/3k",
        "nsid": "social.coves.feed.vote",
        "cid": CID,
        "datetime": "2026-01-02T03:04:05+01:00",
        "uri": "https://example.com/path?q=1",
        "language": "pt-BR",
        "tid": "3kabcdefghijk",
        "record-key": "self",
    }
    reg.validate_record(NSID, good)
    bad = {
        "did": "did:example",
        "handle": "no_underscores.com",
        "at-identifier": "not an identifier",
        "at-uri": "at://alice.example.com/not a nsid",
        "nsid": "vote",
        "cid": "short",
        "datetime": "2026-01-02",
        "uri": "no-scheme",
        "language": "123",
        "tid": "3KABCDEFGHIJK",
        "record-key": "..",
    }
    for field, value in bad.items():
        assert fails(reg, {field: value}).path == field, field
