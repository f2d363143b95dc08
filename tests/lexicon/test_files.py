"""The lexicon directory itself: well-formed, consistent, complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coves.lexicon import LexiconRegistry, LexiconSchemaError
from coves.lexicon._compile import full_ref
from coves.lexicon.registry import default_root
from tests.lexicon.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2] / "lexicons"
FILES = sorted(ROOT.rglob("*.json"))

RECORDS = {
    "social.coves.community.profile": "literal:self",
    "social.coves.community.subscription": "tid",
    "social.coves.community.block": "tid",
    "social.coves.community.post": "tid",
    "social.coves.community.comment": "tid",
    "social.coves.feed.vote": "tid",
    "social.coves.actor.profile": "literal:self",
    "social.coves.actor.block": "tid",
    "social.coves.aggregator.service": "literal:self",
    "social.coves.aggregator.authorization": "any",
}
QUERIES = [
    "social.coves.community.get",
    "social.coves.community.list",
    "social.coves.community.search",
    "social.coves.feed.getCommunity",
    "social.coves.feed.getTimeline",
    "social.coves.feed.getDiscover",
    "social.coves.actor.getPosts",
    "social.coves.actor.getProfile",
    "social.coves.community.post.get",
    "social.coves.community.comment.getComments",
    "social.coves.actor.getComments",
    "social.coves.actor.getBlockedUsers",
    "social.coves.community.getBlockedCommunities",
    "social.coves.feed.searchPosts",
    "com.atproto.identity.resolveHandle",
]


def test_default_root_is_the_repository_lexicon_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVES_LEXICON_DIR", raising=False)
    assert default_root() == ROOT
    monkeypatch.setenv("COVES_LEXICON_DIR", "/somewhere/else")
    assert default_root() == Path("/somewhere/else")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_parses_and_id_matches_path(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["lexicon"] == 1
    assert doc["id"] == ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert isinstance(doc["defs"], dict) and doc["defs"]


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "ref":
            found.append(node["ref"])
        if node.get("type") == "union":
            found.extend(node["refs"])
        for value in node.values():
            found.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs(value))
    return found


def test_every_ref_resolves(registry: LexiconRegistry) -> None:
    checked = 0
    for path in FILES:
        doc = json.loads(path.read_text())
        for ref in _refs(doc["defs"]):
            nsid, _, name = full_ref(ref, doc["id"]).partition("#")
            assert registry.has(nsid), f"{doc['id']}: {ref} names an unknown lexicon"
            assert name in registry.document(nsid)["defs"], f"{doc['id']}: {ref} is dangling"
            checked += 1
    assert checked > 50


def test_expected_records_and_queries_exist(registry: LexiconRegistry) -> None:
    assert registry.record_nsids() == sorted(RECORDS)
    for nsid, key in RECORDS.items():
        assert registry.kind(nsid) == "record"
        assert registry.document(nsid)["defs"]["main"]["key"] == key
    for nsid in QUERIES:
        assert registry.kind(nsid) == "query", nsid
    assert registry.kind("social.coves.feed.defs") == "defs"
    assert not registry.has("social.coves.nope.nothing")
    with pytest.raises(KeyError):
        registry.kind("social.coves.nope.nothing")


def test_every_record_type_has_examples() -> None:
    assert sorted(EXAMPLES) == sorted(RECORDS)


def test_alias_answers_like_its_target(registry: LexiconRegistry) -> None:
    alias = "social.coves.communityFeed.getCommunity"
    assert registry.has(alias)
    assert registry.kind(alias) == "query"
    assert registry.decode_params(alias, {"community": ["c"]}) == registry.decode_params(
        "social.coves.feed.getCommunity", {"community": ["c"]}
    )
    assert "communityFeed" in registry.document(alias)["defs"]["main"]["description"]


def test_query_errors_are_declared(registry: LexiconRegistry) -> None:
    def errors(nsid: str) -> set[str]:
        return {e["name"] for e in registry.document(nsid)["defs"]["main"].get("errors", [])}

    assert "CommunityNotFound" in errors("social.coves.feed.getCommunity")
    assert "InvalidCursor" in errors("social.coves.feed.getTimeline")
    assert "NotFound" in errors("social.coves.community.comment.getComments")
    assert "NotFound" in errors("social.coves.community.get")


# -- broken lexicon directories fail at load --------------------------------


def _write(root: Path, nsid: str, doc: object) -> None:
    path = root.joinpath(*nsid.split(".")).with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def test_load_rejects_id_not_matching_path(tmp_path: Path) -> None:
    _write(tmp_path, "com.example.a", {"lexicon": 1, "id": "com.example.b", "defs": {"x": {}}})
    with pytest.raises(LexiconSchemaError, match="does not match"):
        LexiconRegistry.load(tmp_path)


def test_load_rejects_bad_json_and_version(tmp_path: Path) -> None:
    path = tmp_path / "com" / "example" / "a.json"
    path.parent.mkdir(parents=True)
    path.write_text("{nope")
    with pytest.raises(LexiconSchemaError, match="not valid JSON"):
        LexiconRegistry.load(tmp_path)
    path.write_text(json.dumps({"lexicon": 2, "id": "com.example.a", "defs": {}}))
    with pytest.raises(LexiconSchemaError, match="lexicon v1"):
        LexiconRegistry.load(tmp_path)


def test_load_rejects_dangling_ref(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "com.example.a",
        {"lexicon": 1, "id": "com.example.a", "defs": {"main": {"type": "ref", "ref": "#gone"}}},
    )
    with pytest.raises(LexiconSchemaError, match="unknown definition"):
        LexiconRegistry.load(tmp_path)


def test_load_rejects_unknown_type_and_format(tmp_path: Path) -> None:
    doc = {"lexicon": 1, "id": "com.example.a", "defs": {"main": {"type": "float"}}}
    _write(tmp_path, "com.example.a", doc)
    with pytest.raises(LexiconSchemaError, match="unsupported field type"):
        LexiconRegistry.load(tmp_path)
    doc["defs"] = {"main": {"type": "string", "format": "colour"}}
    _write(tmp_path, "com.example.a", doc)
    with pytest.raises(LexiconSchemaError, match="unknown string format"):
        LexiconRegistry.load(tmp_path)


def test_load_rejects_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LexiconSchemaError, match="does not exist"):
        LexiconRegistry.load(tmp_path / "absent")


def test_load_rejects_undeclared_required_and_keyless_record(tmp_path: Path) -> None:
    obj = {"type": "object", "required": ["ghost"], "properties": {}}
    _write(
        tmp_path / "a",
        "com.example.a",
        {"lexicon": 1, "id": "com.example.a", "defs": {"main": obj}},
    )
    with pytest.raises(LexiconSchemaError, match="'ghost' is not a declared property"):
        LexiconRegistry.load(tmp_path / "a")
    record = {"type": "record", "record": {"type": "object", "properties": {}}}
    _write(
        tmp_path / "b",
        "com.example.a",
        {"lexicon": 1, "id": "com.example.a", "defs": {"main": record}},
    )
    with pytest.raises(LexiconSchemaError, match="needs a key"):
        LexiconRegistry.load(tmp_path / "b")
    query_ref = {"type": "ref", "ref": "com.example.q"}
    _write(
        tmp_path / "c",
        "com.example.a",
        {"lexicon": 1, "id": "com.example.a", "defs": {"main": query_ref}},
    )
    _write(
        tmp_path / "c",
        "com.example.q",
        {"lexicon": 1, "id": "com.example.q", "defs": {"main": {"type": "query"}}},
    )
    with pytest.raises(LexiconSchemaError, match="cannot be referenced"):
        LexiconRegistry.load(tmp_path / "c")


def test_every_route_has_a_lexicon(registry: LexiconRegistry) -> None:
    from coves.xrpc.routing import collect_endpoints

    missing = [nsid for nsid in collect_endpoints() if not registry.has(nsid)]
    assert missing == []


def test_post_get_post_view_is_the_feed_post_view(registry: LexiconRegistry) -> None:
    """post.get names its live entries with its own type (what the mobile app switches on);
    the shape is the feeds' postView, kept identical here."""
    feed = registry.document("social.coves.feed.defs")["defs"]["postView"]
    own = registry.document("social.coves.community.post.get")["defs"]["postView"]
    assert own["required"] == feed["required"]
    assert set(own["properties"]) == set(feed["properties"])
    for name, schema in feed["properties"].items():
        expected = schema
        if schema.get("type") == "ref" and schema["ref"].startswith("#"):
            expected = {**schema, "ref": "social.coves.feed.defs" + schema["ref"]}
        assert own["properties"][name] == expected, name
