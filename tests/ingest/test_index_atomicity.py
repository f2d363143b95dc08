"""A batch commits whole, cursor included, or not at all."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from coves.db import Database, DatabaseUnavailable
from coves.db.queries import ingest as q
from coves.ingest.indexer import Indexer
from coves.ingest.types import Frame
from tests.ingest.helpers import apply, value
from tests.support.events import POST, VOTE, Stream, did, post_record, uri, vote_record

COMMUNITY = did("community")
ALICE = did("alice")


async def test_cursor_is_persisted_with_the_batch(indexer: Indexer, stream: Stream) -> None:
    assert await indexer.load_cursor() is None
    first = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    second = stream.commit(
        ALICE, VOTE, "3kvote0000001", vote_record(uri(COMMUNITY, POST, "3kpost0000001"))
    )
    result = await apply(indexer, first, second)
    assert result.cursor == second["time_us"] == await indexer.load_cursor()
    # Replaying an older batch never moves the cursor back.
    await apply(indexer, first)
    assert await indexer.load_cursor() == second["time_us"]


async def test_failure_mid_apply_commits_nothing(
    db: Database, indexer: Indexer, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply(
        indexer, stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    )
    cursor_before = await indexer.load_cursor()

    def broken(conn: Any, dids: list[str]) -> None:
        conn.execute("SELECT 1 / 0")  # a statement failing after rows were written

    monkeypatch.setattr(q, "recount_communities", broken)
    batch = [
        stream.commit(COMMUNITY, POST, "3kpost0000002", post_record(COMMUNITY, ALICE)),
        stream.commit(
            ALICE, VOTE, "3kvote0000001", vote_record(uri(COMMUNITY, POST, "3kpost0000001"))
        ),
        "not json: would be dead-lettered",
    ]
    with pytest.raises(Exception, match="division by zero"):
        await apply(indexer, *batch)
    assert await value(db, "SELECT count(*) FROM posts") == 1
    assert await value(db, "SELECT count(*) FROM votes") == 0
    assert await value(db, "SELECT count(*) FROM record_state") == 1
    assert await value(db, "SELECT count(*) FROM dead_letters") == 0
    assert await indexer.load_cursor() == cursor_before

    monkeypatch.undo()
    result = await apply(indexer, *batch)  # the consumer retries the same batch
    assert result.applied == 2 and result.dead_lettered == 1
    assert await value(db, "SELECT upvote_count FROM posts WHERE rkey = '3kpost0000001'") == 1


async def test_database_outage_raises_database_error(
    stream: Stream, indexer: Indexer, db: Database
) -> None:
    async def down(fn: Any, **kw: Any) -> Any:
        raise DatabaseUnavailable("connection refused")

    db.run = down  # type: ignore[method-assign]
    with trio.fail_after(5), pytest.raises(DatabaseUnavailable):
        await indexer.apply([Frame(b"{}", 0.0)])


async def test_hooks_run_only_after_commit(
    db: Database, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coves.metrics import Metrics
    from tests.support.events import ACTOR_PROFILE

    calls: list[list[str]] = []
    indexer = Indexer(
        db, instance_did="did:web:x.test", metrics=Metrics(), on_identity_change=[calls.append]
    )
    await apply(indexer, stream.commit(ALICE, ACTOR_PROFILE, "self", {}))

    def broken(conn: Any, dids: list[str]) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(q, "recount_aggregators", broken)
    with pytest.raises(RuntimeError):
        await apply(indexer, stream.identity(ALICE, "alice.example.com"))
    assert calls == []
    assert await value(db, "SELECT handle FROM users") is None
