"""Malformed and rejected input: skipped, counted by reason, dead-lettered, never raised."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from coves.db import Database
from coves.db.queries import ingest as q
from coves.ingest.indexer import Indexer
from coves.metrics import Metrics
from tests.ingest.conftest import INSTANCE_DID
from tests.ingest.helpers import apply, one, value
from tests.support.events import (
    COMMENT,
    POST,
    VOTE,
    Stream,
    comment_record,
    did,
    post_record,
    tid,
    uri,
    vote_record,
)

COMMUNITY = did("community")
ALICE = did("alice")


def _counter(metrics: Metrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


class RejectEverything:
    def validate_record(self, nsid: str, value: Any) -> None:
        raise ValueError(f"{nsid}: title: too long")


def _post(stream: Stream, **kw: Any) -> dict[str, Any]:
    return stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE), **kw)


def _bad_envelopes(stream: Stream) -> list[Any]:
    good = _post(stream)
    no_did = {k: v for k, v in good.items() if k != "did"}
    bad_time = {**good, "time_us": "soon"}
    no_kind = {k: v for k, v in good.items() if k != "kind"}
    no_commit = {k: v for k, v in good.items() if k != "commit"}
    bad_op = {**good, "commit": {**good["commit"], "operation": "upsert"}}
    bad_rkey = {**good, "commit": {**good["commit"], "rkey": "a/b"}}
    no_record = {**good, "commit": {k: v for k, v in good["commit"].items() if k != "record"}}
    no_cid = {**good, "commit": {k: v for k, v in good["commit"].items() if k != "cid"}}
    identity_no_body = {"did": ALICE, "time_us": 5, "kind": "identity"}
    account_bad = {"did": ALICE, "time_us": 5, "kind": "account", "account": {"active": "yes"}}
    return [
        [1, 2, 3],
        no_did,
        bad_time,
        no_kind,
        no_commit,
        bad_op,
        bad_rkey,
        no_record,
        no_cid,
        identity_no_body,
        account_bad,
    ]


async def test_bad_json(db: Database, indexer: Indexer, metrics: Metrics) -> None:
    result = await apply(indexer, "{not json", b"\xff\xfe")
    assert result.dead_lettered == 2 and result.reasons == {"bad_json": 2}
    assert result.cursor is None
    assert await value(db, "SELECT count(*) FROM dead_letters WHERE reason = 'bad_json'") == 2
    assert _counter(metrics, "coves_ingest_dead_letters_total", reason="bad_json") == 2


async def test_bad_envelope(db: Database, indexer: Indexer, stream: Stream) -> None:
    bad = _bad_envelopes(stream)
    result = await apply(indexer, *bad)
    assert result.reasons == {"bad_envelope": len(bad)}, result.reasons
    assert result.applied == 0
    assert await value(db, "SELECT count(*) FROM dead_letters") == len(bad)
    assert await value(db, "SELECT count(*) FROM posts") == 0


async def test_invalid_rev(db: Database, indexer: Indexer, stream: Stream) -> None:
    not_tid = _post(stream, rev="not-a-tid")
    far_future = _post(stream, rev=tid(int(4e15)))
    result = await apply(indexer, not_tid, far_future)
    assert result.reasons == {"invalid_rev": 2}
    row = await one(db, "SELECT did, collection, rkey, time_us, raw FROM dead_letters LIMIT 1")
    assert row["did"] == COMMUNITY and row["collection"] == POST and row["rkey"] == "3kpost0000001"
    assert orjson.loads(row["raw"])["commit"]["rev"] == "not-a-tid"
    assert await value(db, "SELECT count(*) FROM record_state") == 0


async def test_invalid_record_by_lexicon(db: Database, metrics: Metrics, stream: Stream) -> None:
    indexer = Indexer(db, instance_did=INSTANCE_DID, metrics=metrics, validator=RejectEverything())
    result = await apply(indexer, _post(stream))
    assert result.reasons == {"invalid_record": 1}
    detail = await value(db, "SELECT detail FROM dead_letters")
    assert "title: too long" in detail
    assert await value(db, "SELECT count(*) FROM posts") == 0


async def test_invalid_record_by_field_checks(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    post = uri(COMMUNITY, POST, "3kpost0000001")
    events = [
        stream.commit(COMMUNITY, POST, "3k1", post_record(COMMUNITY, ALICE, createdAt="yesterday")),
        stream.commit(COMMUNITY, POST, "3k2", {"community": COMMUNITY, "author": ALICE}),
        stream.commit(COMMUNITY, POST, "3k3", post_record(COMMUNITY, ALICE, title=7)),
        stream.commit(ALICE, COMMENT, "3k4", {"content": "x", "createdAt": "2026-01-01T00:00:00Z"}),
        stream.commit(ALICE, COMMENT, "3k5", comment_record(uri(ALICE, VOTE, "x"), post)),
        stream.commit(
            ALICE, COMMENT, "3k6", comment_record(post, "at://alice.example.com/a.b.c/x")
        ),
        stream.commit(ALICE, VOTE, "3k7", vote_record(post, "sideways")),
        stream.commit(ALICE, VOTE, "3k8", {**vote_record(post), "$type": "social.coves.other"}),
        stream.commit(COMMUNITY, POST, "3k9", post_record(COMMUNITY, ALICE, content="a\u0000b")),
    ]
    result = await apply(indexer, *events)
    assert result.reasons == {"invalid_record": len(events)}, result.reasons
    assert await value(db, "SELECT count(*) FROM posts") == 0
    assert await value(db, "SELECT count(*) FROM comments") == 0
    assert await value(db, "SELECT count(*) FROM votes") == 0


async def test_security(db: Database, indexer: Indexer, stream: Stream) -> None:
    # A post must live in its community's repo: anyone else's repo is refused.
    forged = stream.commit(ALICE, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    result = await apply(indexer, forged)
    assert result.reasons == {"security": 1}
    assert await value(db, "SELECT count(*) FROM posts") == 0
    assert await value(db, "SELECT reason FROM dead_letters") == "security"


async def test_immutable_threading_is_dead_lettered(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    post = uri(COMMUNITY, POST, "3kpost0000001")
    other = uri(COMMUNITY, POST, "3kpost0000002")
    create = stream.commit(ALICE, COMMENT, "3kc", comment_record(post, post))
    move = stream.commit(ALICE, COMMENT, "3kc", comment_record(other, other), operation="update")
    result = await apply(indexer, create, move)  # also caught inside one batch
    assert result.applied == 1 and result.reasons == {"immutable_threading": 1}
    assert await value(db, "SELECT root_uri FROM comments") == post


async def test_ignored_kinds_and_collections_are_counted_not_kept(
    db: Database, indexer: Indexer, metrics: Metrics, stream: Stream
) -> None:
    foreign = stream.commit(ALICE, "app.bsky.feed.post", "3kx", {"text": "hi"})
    sync = {"did": ALICE, "time_us": foreign["time_us"] + 1, "kind": "sync", "sync": {}}
    result = await apply(indexer, foreign, sync)
    assert result.dead_lettered == 0 and result.skipped == 2
    assert result.reasons == {"unindexed_collection": 1, "unknown_kind": 1}
    assert result.cursor == sync["time_us"]  # still advances the cursor
    assert await value(db, "SELECT count(*) FROM dead_letters") == 0
    assert await indexer.load_cursor() == sync["time_us"]
    assert (
        _counter(
            metrics,
            "coves_ingest_events_total",
            kind="commit",
            collection="app.bsky.feed.post",
            outcome="ignored",
        )
        == 1
    )


async def test_malformed_never_blocks_good_events_in_the_same_batch(
    db: Database, indexer: Indexer, metrics: Metrics, stream: Stream
) -> None:
    result = await apply(indexer, "garbage", *_bad_envelopes(stream), _post(stream))
    assert result.applied == 1
    assert await value(db, "SELECT count(*) FROM posts") == 1
    assert (
        _counter(
            metrics, "coves_ingest_events_total", kind="commit", collection=POST, outcome="applied"
        )
        == 1
    )


async def test_dead_letters_are_bounded(
    db: Database, indexer: Indexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(q, "DEAD_LETTER_KEEP", 3)
    await apply(indexer, *[f"bad {i}" for i in range(5)])
    await apply(indexer, "newest")
    raws = [r["raw"] for r in await db.fetch("SELECT raw FROM dead_letters ORDER BY id")]
    assert raws == ["bad 3", "bad 4", "newest"]
