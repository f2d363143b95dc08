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

    monkeypatch.setattr(q, "recount_community_posts", broken)
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
    assert await value(db, "SELECT count(*) FROM posts WHERE rev IS NOT NULL") == 1
    assert await value(db, "SELECT count(*) FROM record_state") == 0
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


async def test_event_the_database_refuses_is_isolated_and_dead_lettered(
    db: Database, indexer: Indexer, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    real = q.upsert_posts

    def picky(conn: Any, cols: Any) -> None:
        if "poison" in cols[5]:
            conn.execute("SELECT 1")
            raise psycopg.errors.CheckViolation("value refused")
        real(conn, cols)

    monkeypatch.setattr(q, "upsert_posts", picky)
    events = [
        stream.commit(COMMUNITY, POST, f"3kpost000000{i}", post_record(COMMUNITY, ALICE, title=t))
        for i, t in enumerate(["ok", "ok", "poison", "ok", "ok"])
    ]
    events.append(stream.identity(ALICE, "alice.example.com"))
    result = await apply(indexer, *events)
    assert result.applied == 5 and result.dead_lettered == 1
    assert result.reasons == {"apply_failed": 1}
    assert await value(db, "SELECT count(*) FROM posts") == 4
    identity_time = await value(db, "SELECT identity_time_us FROM users WHERE did = %s", ALICE)
    assert identity_time == events[-1]["time_us"]  # applied (the handle awaits verification)
    row = await value(db, "SELECT rkey FROM dead_letters WHERE reason = 'apply_failed'")
    assert row == "3kpost0000002"
    assert await indexer.load_cursor() == events[-1]["time_us"]
    # Counted although the community has no row yet.
    assert await value(db, "SELECT post_count FROM community_stats") == 4


async def test_connectivity_errors_are_not_bisected(
    indexer: Indexer, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def down(conn: Any, cols: Any) -> None:
        calls.append(1)
        raise DatabaseUnavailable("gone")

    monkeypatch.setattr(q, "upsert_posts", down)
    events = [
        stream.commit(COMMUNITY, POST, f"3kpost000000{i}", post_record(COMMUNITY, ALICE))
        for i in range(4)
    ]
    with pytest.raises(DatabaseUnavailable):
        await apply(indexer, *events)
    assert calls == [1]


async def test_accounts_of_a_failed_batch_are_not_remembered(
    db: Database, indexer: Indexer, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexer skips inserting users rows it knows exist; a rolled-back batch's
    accounts do not exist, so the next batch naming them must still insert them."""
    bob = did("bob")
    original = q.save_cursor

    def broken(conn: Any, time_us: int, name: str = q.CURSOR_NAME) -> None:
        conn.execute("SELECT 1 / 0")

    monkeypatch.setattr(q, "save_cursor", broken)
    with pytest.raises(Exception, match="division by zero"):
        await apply(
            indexer, stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, bob))
        )
    assert await value(db, "SELECT count(*) FROM users") == 0
    monkeypatch.setattr(q, "save_cursor", original)
    await apply(
        indexer, stream.commit(COMMUNITY, POST, "3kpost0000002", post_record(COMMUNITY, bob))
    )
    assert await value(db, "SELECT count(*) FROM users WHERE did = %s", bob) == 1
    # Known accounts are not probed again, and stay.
    await apply(
        indexer, stream.commit(COMMUNITY, POST, "3kpost0000003", post_record(COMMUNITY, bob))
    )
    assert await value(db, "SELECT count(*) FROM users") == 2  # bob and the community


async def test_ingest_commits_are_asynchronous_and_local(db: Database) -> None:
    """The batch's transaction does not wait for its WAL flush (the cursor rolls back
    with a lost tail, see q.lock); the setting does not outlive the transaction."""

    def work(conn: Any) -> tuple[str, str]:
        conn.execute("SET synchronous_commit = on")  # the test server's default is off
        with conn.transaction():
            q.lock(conn)
            inside = conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]
        after = conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]
        conn.execute("RESET synchronous_commit")
        return inside, after

    assert await db.run(work, transaction=False) == ("off", "on")
