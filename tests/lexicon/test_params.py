"""Query-parameter decoding and procedure-body validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from coves.errors import XRPCError
from coves.lexicon import LexiconRegistry, LexiconValidationError
from tests.lexicon.helpers import registry_from

FEED = "social.coves.feed.getCommunity"
COMMENTS = "social.coves.community.comment.getComments"
POST_URI = "at://did:plc:abc/social.coves.community.post/3kabcdefghijk"


def bad(registry: LexiconRegistry, nsid: str, raw: dict[str, list[str]]) -> XRPCError:
    with pytest.raises(XRPCError) as info:
        registry.decode_params(nsid, raw)
    err = info.value
    assert err.status == 400
    assert err.error == "InvalidRequest"
    return err


def test_defaults_applied(registry: LexiconRegistry) -> None:
    assert registry.decode_params(FEED, {"community": ["gaming"]}) == {
        "community": "gaming",
        "sort": "hot",
        "limit": 15,
    }
    assert registry.decode_params(COMMENTS, {"post": [POST_URI]}) == {
        "post": POST_URI,
        "sort": "hot",
        "depth": 10,
        "limit": 50,
        "repliesPerParent": 5,
    }
    assert registry.decode_params("social.coves.community.list", {}) == {
        "limit": 50,
        "sort": "popular",
    }


def test_values_are_typed(registry: LexiconRegistry) -> None:
    out = registry.decode_params(
        "social.coves.community.list",
        {"limit": ["7"], "subscribed": ["true"], "sort": ["new"], "cursor": ["abc"]},
    )
    assert out == {"limit": 7, "subscribed": True, "sort": "new", "cursor": "abc"}
    assert (
        registry.decode_params("social.coves.community.list", {"subscribed": ["false"]})[
            "subscribed"
        ]
        is False
    )


def test_unknown_params_ignored(registry: LexiconRegistry) -> None:
    out = registry.decode_params(FEED, {"community": ["c"], "debug": ["1"], "x": ["a", "b"]})
    assert "debug" not in out and "x" not in out


def test_required_missing(registry: LexiconRegistry) -> None:
    assert bad(registry, FEED, {}).message == "community: required parameter missing"
    assert bad(registry, FEED, {"community": []}).message.startswith("community:")
    assert bad(registry, "social.coves.community.search", {}).message.startswith("q:")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "must be an integer"),
        ("1.5", "must be an integer"),
        (" 5", "must be an integer"),
        ("1_0", "must be an integer"),
        ("+5", "must be an integer"),
        ("0", "at least 1"),
        ("-3", "at least 1"),
        ("99999999999999999999999", "must be an integer"),
    ],
)
def test_bad_integer(registry: LexiconRegistry, value: str, problem: str) -> None:
    err = bad(registry, FEED, {"community": ["c"], "limit": [value]})
    assert err.message.startswith("limit: ")
    assert problem in err.message


def test_integer_bounds_inclusive(registry: LexiconRegistry) -> None:
    for value in ("1", "50"):
        assert registry.decode_params(FEED, {"community": ["c"], "limit": [value]})["limit"] == int(
            value
        )
    assert registry.decode_params(COMMENTS, {"post": [POST_URI], "depth": ["0"]})["depth"] == 0
    assert "depth" in bad(registry, COMMENTS, {"post": [POST_URI], "depth": ["101"]}).message
    assert "depth" in bad(registry, COMMENTS, {"post": [POST_URI], "depth": ["-1"]}).message


def test_bad_boolean(registry: LexiconRegistry) -> None:
    err = bad(registry, "social.coves.community.list", {"subscribed": ["yes"]})
    assert err.message == "subscribed: must be true or false, got 'yes'"


def test_enum_param(registry: LexiconRegistry) -> None:
    err = bad(registry, FEED, {"community": ["c"], "sort": ["best"]})
    assert err.message.startswith("sort: must be one of")
    err = bad(registry, FEED, {"community": ["c"], "timeframe": ["decade"]})
    assert err.message.startswith("timeframe:")
    assert (
        registry.decode_params(FEED, {"community": ["c"], "timeframe": ["week"]})["timeframe"]
        == "week"
    )


def test_format_param(registry: LexiconRegistry) -> None:
    err = bad(registry, COMMENTS, {"post": ["https://example.com/p/1"]})
    assert err.message.startswith("post: must be an AT-URI")
    assert bad(
        registry, "social.coves.actor.getProfile", {"actor": ["not valid"]}
    ).message.startswith("actor:")


def test_repeated_scalar_rejected(registry: LexiconRegistry) -> None:
    err = bad(registry, FEED, {"community": ["c"], "limit": ["5", "6"]})
    assert err.message == "limit: must be given once"


def test_array_params(registry: LexiconRegistry) -> None:
    nsid = "social.coves.community.post.get"
    out = registry.decode_params(nsid, {"uris": [POST_URI, POST_URI]})
    assert out == {"uris": [POST_URI, POST_URI]}
    err = bad(registry, nsid, {"uris": [POST_URI, "nope"]})
    assert err.message.startswith("uris[1]: must be an AT-URI")
    err = bad(registry, nsid, {"uris": [POST_URI] * 26})
    assert "at most 25" in err.message
    assert bad(registry, nsid, {}).message == "uris: required parameter missing"


def test_string_length_param(registry: LexiconRegistry) -> None:
    err = bad(registry, FEED, {"community": ["c"], "cursor": ["x" * 2049]})
    assert err.message.startswith("cursor: must be at most 2048 bytes")


def test_alias_decodes(registry: LexiconRegistry) -> None:
    alias = "social.coves.communityFeed.getCommunity"
    assert registry.decode_params(alias, {"community": ["c"], "limit": ["3"]})["limit"] == 3
    assert bad(registry, alias, {"community": ["c"], "limit": ["x"]}).message.startswith("limit:")


def test_non_method_has_no_params(registry: LexiconRegistry) -> None:
    assert registry.decode_params("social.coves.feed.vote", {"a": ["b"]}) == {}


# -- procedures ---------------------------------------------------------------

PROC = {
    "main": {
        "type": "procedure",
        "parameters": {
            "type": "params",
            "properties": {"dry": {"type": "boolean", "default": False}},
        },
        "input": {
            "encoding": "application/json",
            "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "maxLength": 8},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "output": {
            "encoding": "application/json",
            "schema": {
                "type": "object",
                "required": ["ok"],
                "properties": {"ok": {"type": "boolean"}},
            },
        },
    }
}


def test_validate_input(tmp_path: Path) -> None:
    reg = registry_from(tmp_path, PROC)
    assert reg.kind("com.example.test") == "procedure"
    reg.validate_input("com.example.test", {"name": "ok"})
    with pytest.raises(XRPCError) as info:
        reg.validate_input("com.example.test", {"name": "far too long"})
    assert (info.value.status, info.value.error) == (400, "InvalidRequest")
    assert info.value.message.startswith("name: must be at most 8 bytes")
    with pytest.raises(XRPCError) as info:
        reg.validate_input("com.example.test", {"name": "a", "tags": ["x", 3]})
    assert info.value.message.startswith("tags[1]: must be a string")
    with pytest.raises(XRPCError) as info:
        reg.validate_input("com.example.test", None)
    assert info.value.message == "request body is required"
    with pytest.raises(XRPCError) as info:
        reg.validate_input("com.example.test", [1])
    assert info.value.message.startswith("$: must be an object")
    assert reg.decode_params("com.example.test", {}) == {"dry": False}


def test_validate_output(tmp_path: Path) -> None:
    reg = registry_from(tmp_path, PROC)
    reg.validate_output("com.example.test", {"ok": True})
    with pytest.raises(LexiconValidationError) as info:
        reg.validate_output("com.example.test", {"ok": "yes"})
    assert info.value.path == "ok"


def test_input_without_schema_and_unknown_nsid(tmp_path: Path) -> None:
    reg = registry_from(
        tmp_path,
        {"main": {"type": "procedure", "input": {"encoding": "*/*"}}},
    )
    reg.validate_input("com.example.test", b"raw bytes")
    reg.validate_input("com.example.unknown", {"anything": 1})


def test_schema_errors_in_methods(tmp_path: Path) -> None:
    from coves.lexicon import LexiconSchemaError

    with pytest.raises(LexiconSchemaError, match="parameters cannot be of type"):
        registry_from(
            tmp_path / "a",
            {
                "main": {
                    "type": "query",
                    "parameters": {"type": "params", "properties": {"o": {"type": "object"}}},
                }
            },
        )
    with pytest.raises(LexiconSchemaError, match="needs an encoding"):
        registry_from(tmp_path / "b", {"main": {"type": "procedure", "input": {"schema": {}}}})
    with pytest.raises(LexiconSchemaError, match="required parameter"):
        registry_from(
            tmp_path / "c",
            {
                "main": {
                    "type": "query",
                    "parameters": {"type": "params", "required": ["x"], "properties": {}},
                }
            },
        )


def test_real_outputs_accept_view_shapes(registry: LexiconRegistry) -> None:
    post_view = {
        "uri": POST_URI,
        "cid": "bafyreihpapd6cjn2kt4jz6qkoyvy5frmqixqpwm3vs7b6gbdflv3sx4cuy",
        "rkey": "3kabcdefghijk",
        "author": {"did": "did:plc:author", "handle": "alice.example.com"},
        "record": {"$type": "social.coves.community.post"},
        "community": {"did": "did:plc:abc", "handle": "c-gaming.coves.social", "name": "gaming"},
        "title": "t",
        "createdAt": "2026-11-23T09:00:00.000Z",
        "indexedAt": "2026-11-23T09:00:01.000Z",
        "stats": {"upvotes": 1, "downvotes": 0, "score": 1, "commentCount": 2},
        "viewer": {"vote": "up", "voteUri": "at://did:plc:me/social.coves.feed.vote/3kabcdefghijk"},
    }
    registry.validate_output(FEED, {"feed": [{"post": post_view}], "cursor": "abc"})
    comment = {
        "uri": "at://did:plc:me/social.coves.community.comment/3kabcdefghijk",
        "cid": post_view["cid"],
        "author": {"did": "did:plc:me", "handle": "me.example.com"},
        "record": {},
        "post": {"uri": POST_URI, "cid": post_view["cid"]},
        "content": "hi",
        "createdAt": "2026-11-23T09:00:00.000Z",
        "indexedAt": "2026-11-23T09:00:00.000Z",
        "stats": {"upvotes": 0, "downvotes": 0, "score": 0, "replyCount": 1},
        "viewer": {},
    }
    thread = {"comment": comment, "replies": [{"comment": comment, "hasMore": True}]}
    registry.validate_output(COMMENTS, {"comments": [thread], "post": post_view})
    post_view["viewer"] = {"vote": "sideways"}
    with pytest.raises(LexiconValidationError) as info:
        registry.validate_output(COMMENTS, {"comments": [], "post": post_view})
    assert info.value.path == "post.viewer.vote"


# -- the real write procedures --------------------------------------------------

POST_CREATE = "social.coves.community.post.create"


def test_real_procedures_exist(registry: LexiconRegistry) -> None:
    for nsid in (
        POST_CREATE,
        "social.coves.community.create",
        "social.coves.community.update",
        "social.coves.community.subscribe",
        "social.coves.community.unsubscribe",
        "social.coves.community.blockCommunity",
        "social.coves.community.unblockCommunity",
        "social.coves.aggregator.register",
    ):
        assert registry.kind(nsid) == "procedure", nsid


def input_error(registry: LexiconRegistry, nsid: str, body: object) -> str:
    with pytest.raises(XRPCError) as info:
        registry.validate_input(nsid, body)
    assert (info.value.status, info.value.error) == (400, "InvalidRequest")
    return info.value.message


def test_post_create_input(registry: LexiconRegistry) -> None:
    from tests.lexicon.examples import POST

    body = {k: v for k, v in POST.items() if k not in ("$type", "author", "createdAt")}
    body["community"] = "!gaming@coves.social"
    registry.validate_input(POST_CREATE, body)
    assert input_error(registry, POST_CREATE, {"title": "x"}).startswith("community: required")
    message = input_error(registry, POST_CREATE, {**body, "content": "a" * 100_001})
    assert message.startswith("content: must be at most 100000 bytes")
    external = {
        "$type": "social.coves.embed.external",
        "external": {"uri": "https://e.com", "thumb": "https://e.com/t.png"},
    }
    assert input_error(registry, POST_CREATE, {**body, "embed": external}).startswith(
        "embed.external.thumb:"
    )


def test_named_errors_left_to_handlers(registry: LexiconRegistry) -> None:
    # aggregator.register answers InvalidDID for a missing DID, so the lexicon must not
    # turn that into a generic InvalidRequest first.
    registry.validate_input("social.coves.aggregator.register", {"domain": "example.com"})
    assert input_error(registry, "social.coves.aggregator.register", {"did": 5}).startswith("did:")
    registry.validate_input(
        "social.coves.community.subscribe", {"community": "did:plc:x", "contentVisibility": 0}
    )
    assert input_error(registry, "social.coves.community.create", {"name": "x" * 64}).startswith(
        "name: must be at most 63 bytes"
    )


def test_post_get_entries_and_comment_placeholders(registry: LexiconRegistry) -> None:
    defs = "social.coves.community.post.get"
    registry.validate_output(
        "social.coves.community.post.get",
        {
            "posts": [
                {"$type": f"{defs}#notFoundPost", "uri": POST_URI, "notFound": True},
                {
                    "$type": f"{defs}#tombstonePost",
                    "uri": POST_URI,
                    "deleted": True,
                    "notFound": True,
                },
                {
                    "$type": f"{defs}#unavailablePost",
                    "uri": POST_URI,
                    "unavailable": True,
                    "notFound": True,
                },
                {
                    "$type": f"{defs}#blockedPost",
                    "uri": POST_URI,
                    "blocked": True,
                    "blockedBy": "community",
                },
            ]
        },
    )
    with pytest.raises(LexiconValidationError) as info:
        registry.validate_output(
            "social.coves.community.post.get",
            {"posts": [{"$type": f"{defs}#notFoundPost", "uri": POST_URI, "notFound": False}]},
        )
    assert info.value.path == "posts[0].notFound"
    placeholder = {
        "uri": "at://did:plc:me/social.coves.community.comment/3kabcdefghijk",
        "cid": "bafyreihpapd6cjn2kt4jz6qkoyvy5frmqixqpwm3vs7b6gbdflv3sx4cuy",
        "post": {
            "uri": POST_URI,
            "cid": "bafyreihpapd6cjn2kt4jz6qkoyvy5frmqixqpwm3vs7b6gbdflv3sx4cuy",
        },
        "createdAt": "2026-11-23T09:00:00.000Z",
        "indexedAt": "2026-11-23T09:00:00.000Z",
        "stats": {"upvotes": 0, "downvotes": 0, "score": 0, "replyCount": 1},
        "isDeleted": True,
        "deletedAt": "2026-11-23T09:00:00.000Z",
        "deletionReason": "author",
    }
    registry.validate_output(
        COMMENTS,
        {
            "comments": [{"comment": placeholder, "replies": [{"comment": placeholder}]}],
            "post": {
                "uri": POST_URI,
                "cid": placeholder["cid"],
                "rkey": "3kabcdefghijk",
                "author": {"did": "did:plc:a", "handle": "a.test"},
                "record": {},
                "community": {"did": "did:plc:c", "handle": "c.test", "name": "c"},
                "createdAt": "2026-11-23T09:00:00.000Z",
                "indexedAt": "2026-11-23T09:00:00.000Z",
                "stats": {"upvotes": 0, "downvotes": 0, "score": 0, "commentCount": 0},
            },
        },
    )


def test_empty_values_count_as_absent(registry: LexiconRegistry) -> None:
    out = registry.decode_params(FEED, {"community": ["c"], "cursor": [""], "limit": [""]})
    assert out == {"community": "c", "sort": "hot", "limit": 15}
    assert (
        bad(registry, FEED, {"community": [""]}).message == "community: required parameter missing"
    )
    assert bad(registry, "social.coves.community.search", {"q": [""]}).message.startswith("q:")
    nsid = "social.coves.community.post.get"
    assert registry.decode_params(nsid, {"uris": ["", POST_URI]}) == {"uris": [POST_URI]}


def test_messages_do_not_echo_long_input(registry: LexiconRegistry) -> None:
    err = bad(registry, FEED, {"community": ["c"], "limit": ["9" * 5000]})
    assert len(err.message) < 120
    err = bad(registry, "social.coves.community.list", {"subscribed": ["x" * 5000]})
    assert len(err.message) < 120
    assert err.message.endswith("...'") or err.message.endswith("...")


@pytest.mark.parametrize(
    ("nsid", "base"),
    [
        ("social.coves.feed.getTimeline", {}),
        ("social.coves.feed.getDiscover", {}),
        ("social.coves.actor.getPosts", {"actor": ["alice.example.com"]}),
        (FEED, {"community": ["!gaming@coves.social"]}),
    ],
)
def test_feed_methods_share_the_feed_contract(
    registry: LexiconRegistry, nsid: str, base: dict[str, list[str]]
) -> None:
    out = registry.decode_params(nsid, base)
    assert out["sort"] == "hot" and out["limit"] == 15 and "timeframe" not in out
    for sort in ("hot", "top", "new", "controversial"):
        assert registry.decode_params(nsid, {**base, "sort": [sort]})["sort"] == sort
    for timeframe in ("hour", "day", "week", "month", "year", "all"):
        decoded = registry.decode_params(nsid, {**base, "sort": ["top"], "timeframe": [timeframe]})
        assert decoded["timeframe"] == timeframe
    assert registry.decode_params(nsid, {**base, "limit": ["50"]})["limit"] == 50
    assert registry.decode_params(nsid, {**base, "limit": ["51"]})["limit"] == 50  # clamped
    for value in ("0", "-1", "ten"):
        assert bad(registry, nsid, {**base, "limit": [value]}).message.startswith("limit:")


@pytest.mark.parametrize(
    ("param", "good", "bad_values"),
    [
        ("repliesPerParent", ["0", "50"], ["-1", "51"]),
        ("limit", ["1", "100"], ["0", "-1"]),
        ("depth", ["0", "100"], ["-1", "101", "1.0"]),
        ("sort", ["hot", "top", "new"], ["controversial", "HOT"]),
        ("timeframe", ["hour", "all"], ["forever"]),
    ],
)
def test_get_comments_bounds(
    registry: LexiconRegistry, param: str, good: list[str], bad_values: list[str]
) -> None:
    base = {"post": [POST_URI]}
    for value in good:
        assert str(registry.decode_params(COMMENTS, {**base, param: [value]})[param]) == value
    for value in bad_values:
        assert bad(registry, COMMENTS, {**base, param: [value]}).message.startswith(f"{param}:")


def test_create_limits_fit_the_profile_record(registry: LexiconRegistry) -> None:
    # What community.create accepts must produce a profile record ingestion accepts.
    create = registry.document("social.coves.community.create")["defs"]["main"]["input"]["schema"]
    record = registry.document("social.coves.community.profile")["defs"]["main"]["record"]
    for field in ("name", "displayName", "description", "rules", "categories"):
        made, stored = create["properties"][field], record["properties"][field]
        for limit in ("maxLength", "maxGraphemes"):
            if limit in stored:
                assert made.get(limit, float("inf")) <= stored[limit], (field, limit)
        if "items" in stored:
            for limit in ("maxLength", "maxGraphemes"):
                if limit in stored["items"]:
                    assert made["items"][limit] <= stored["items"][limit], (field, limit)
    message = input_error(
        registry, "social.coves.community.create", {"name": "n", "description": "é" * 1001}
    )
    assert message.startswith("description: must be at most 1000 graphemes")
