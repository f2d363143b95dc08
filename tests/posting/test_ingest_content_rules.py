"""Posts written into a community's repo by other means still obey its content
rules: the indexer keeps them out of views (withheld) and counts them."""

from __future__ import annotations

from typing import Any

import pytest

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from tests.ingest.helpers import apply, one, value
from tests.support.events import (
    POST,
    PROFILE,
    Stream,
    community_record,
    did,
    post_record,
)
from tests.support.factories import blob

INSTANCE = "did:web:coves.test"
COMMUNITY = did("textonly")
ALICE = did("alice")
IMAGES = {"$type": "social.coves.embed.images", "images": [{"image": blob(), "alt": "a cat"}]}
LINK = {"$type": "social.coves.embed.external", "external": {"uri": "https://example.com/a"}}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def indexer(db: Database, metrics: Metrics) -> Indexer:
    return Indexer(db, instance_did=INSTANCE, metrics=metrics, validator=LexiconRegistry.load())


def profile(stream: Stream, rules: dict[str, Any] | None, op: str = "create") -> dict[str, Any]:
    extra = {"contentRules": rules} if rules is not None else {}
    record = community_record("textonly", INSTANCE, ALICE, **extra)
    return stream.commit(COMMUNITY, PROFILE, "self", record, operation=op)


def post(stream: Stream, rkey: str, embed: Any = None, op: str = "create") -> dict[str, Any]:
    extra = {"embed": embed} if embed is not None else {}
    record = post_record(COMMUNITY, ALICE, title=f"post {rkey}", **extra)
    return stream.commit(COMMUNITY, POST, rkey, record, operation=op)


def withheld_count(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "coves_ingest_events_total",
        {"kind": "commit", "collection": POST, "outcome": "withheld"},
    )
    return value or 0.0


async def test_text_only_community_withholds_embeds(
    db: Database, indexer: Indexer, metrics: Metrics
) -> None:
    stream = Stream()
    await apply(indexer, profile(stream, {"textOnly": True}))
    await apply(indexer, post(stream, "3kaaaaaaaaaa2"), post(stream, "3kaaaaaaaaaa3", IMAGES))
    rows = await db.fetch(
        "SELECT rkey, deleted_at IS NULL AS live, withheld FROM posts ORDER BY rkey"
    )
    assert [(r["rkey"], r["live"], r["withheld"]) for r in rows] == [
        ("3kaaaaaaaaaa2", True, None),
        ("3kaaaaaaaaaa3", False, "content_rules"),
    ]
    assert await value(db, "SELECT post_count FROM community_stats WHERE did = %s", COMMUNITY) == 1
    assert withheld_count(metrics) == 1
    # Editing the text post to carry a link withholds it too, and the count follows.
    await apply(indexer, post(stream, "3kaaaaaaaaaa2", LINK, op="update"))
    row = await one(db, "SELECT deleted_at, withheld FROM posts WHERE rkey = %s", "3kaaaaaaaaaa2")
    assert row["deleted_at"] is not None and row["withheld"] == "content_rules"
    assert await value(db, "SELECT post_count FROM community_stats WHERE did = %s", COMMUNITY) == 0
    assert withheld_count(metrics) == 2
    # Taking the link out again brings it back.
    await apply(indexer, post(stream, "3kaaaaaaaaaa2", op="update"))
    row = await one(db, "SELECT deleted_at, withheld FROM posts WHERE rkey = %s", "3kaaaaaaaaaa2")
    assert row["deleted_at"] is None and row["withheld"] is None
    assert await value(db, "SELECT post_count FROM community_stats WHERE did = %s", COMMUNITY) == 1


async def test_allowed_embed_types_and_rules_changed_in_the_same_batch(
    db: Database, indexer: Indexer
) -> None:
    stream = Stream()
    await apply(
        indexer,
        profile(stream, {"allowedEmbedTypes": ["images"]}),
        post(stream, "3kbbbbbbbbbb2", IMAGES),
        post(stream, "3kbbbbbbbbbb3", LINK),
    )
    rows = await db.fetch("SELECT rkey, withheld FROM posts ORDER BY rkey")
    assert [(r["rkey"], r["withheld"]) for r in rows] == [
        ("3kbbbbbbbbbb2", None),
        ("3kbbbbbbbbbb3", "content_rules"),
    ]
    # Rules dropped: posts indexed from now on are not checked against the old ones.
    await apply(indexer, profile(stream, None, op="update"), post(stream, "3kbbbbbbbbbb4", LINK))
    assert await value(db, "SELECT withheld FROM posts WHERE rkey = %s", "3kbbbbbbbbbb4") is None


async def test_author_delete_of_a_withheld_post_is_a_plain_delete(
    db: Database, indexer: Indexer
) -> None:
    stream = Stream()
    await apply(indexer, profile(stream, {"textOnly": True}), post(stream, "3kcccccccccc2", LINK))
    assert await value(db, "SELECT withheld FROM posts") == "content_rules"
    await apply(indexer, stream.delete(COMMUNITY, POST, "3kcccccccccc2"))
    row = await one(db, "SELECT deleted_at, withheld FROM posts")
    assert row["deleted_at"] is not None and row["withheld"] is None


async def test_communities_without_rules_take_every_embed(db: Database, indexer: Indexer) -> None:
    stream = Stream()
    await apply(indexer, profile(stream, {}), post(stream, "3kdddddddddd2", IMAGES))
    assert await value(db, "SELECT deleted_at IS NULL AND withheld IS NULL FROM posts") is True


async def test_post_get_says_why_a_withheld_post_is_not_shown(
    db: Database, indexer: Indexer, settings: Any
) -> None:
    from coves.context import AppContext
    from coves.xrpc.app import create_app
    from tests.posting.client import Client

    stream = Stream()
    await apply(indexer, profile(stream, {"textOnly": True}), post(stream, "3keeeeeeeeee2", LINK))
    lexicons = LexiconRegistry.load()
    client = Client(create_app(AppContext(settings=settings, db=db, lexicons=lexicons)), lexicons)
    uri = f"at://{COMMUNITY}/{POST}/3keeeeeeeeee2"
    status, body = await client.get("social.coves.community.post.get", {"uris": uri})
    assert status == 200, body
    [entry] = body["posts"]
    assert entry["unavailable"] is True and entry["notFound"] is True
    assert "content rules" in entry["reason"]
