"""After the database restarts, a consumer resumes from the durable cursor (issue 12.1).

Crash recovery empties the unlogged ``ingest_sessions`` table; these tests
empty it by hand (what recovery does) to check the indexer's side of the
contract quickly. ``test_pg_crash.py`` crashes a real PostgreSQL mid-stream.
"""

from __future__ import annotations

import pytest

from coves.db import Database, DatabaseError
from coves.ingest.indexer import Indexer
from coves.ingest.types import SessionLost
from tests.ingest.helpers import apply, value
from tests.support.events import POST, VOTE, Stream, did, post_record, uri, vote_record

COMMUNITY = did("community")
ALICE = did("alice")
POST_URI = uri(COMMUNITY, POST, "3kpost0000001")


async def _crash_recovery(db: Database) -> None:
    """What PostgreSQL does to an unlogged table when it recovers from a crash."""
    await db.execute("TRUNCATE ingest_sessions")


async def test_a_batch_after_a_restart_is_refused_until_the_cursor_is_read_again(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    assert await indexer.load_cursor() is None
    first = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    await apply(indexer, first)
    await _crash_recovery(db)

    vote = stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI))
    with pytest.raises(SessionLost):
        await apply(indexer, vote)
    assert isinstance(SessionLost("x"), DatabaseError)  # the consumer's reconnect path
    assert await value(db, "SELECT count(*) FROM votes") == 0
    assert await value(db, "SELECT upvote_count FROM posts WHERE uri = %s", POST_URI) == 0
    # Refused again without touching the database's state until the cursor is re-read.
    with pytest.raises(SessionLost):
        await apply(indexer, vote)

    assert await indexer.load_cursor() == first["time_us"]
    result = await apply(indexer, vote)
    assert result.applied == 1
    assert await value(db, "SELECT upvote_count FROM posts WHERE uri = %s", POST_URI) == 1


async def test_a_clean_reconnect_keeps_working_and_sessions_are_per_source(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await indexer.load_cursor()
    await indexer.load_cursor()  # every reconnect opens a session
    assert await indexer.open_source("firehose:pds.test") is None
    assert await value(db, "SELECT count(*) FROM ingest_sessions") == 3
    first = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    assert (await apply(indexer, first)).applied == 1
    await db.execute("DELETE FROM ingest_sessions WHERE source = 'firehose:pds.test'")
    # Jetstream's own session is intact: its batches still commit.
    vote = stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI))
    assert (await apply(indexer, vote)).applied == 1


async def test_a_writer_without_a_session_opens_one(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    """`coves replay` never reads the cursor: its first batch registers a session,
    and a restart during the replay still fails it instead of leaving a hole."""
    first = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    await apply(indexer, first)
    assert await value(db, "SELECT count(*) FROM ingest_sessions") == 1
    await _crash_recovery(db)
    with pytest.raises(SessionLost):
        await apply(indexer, stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI)))


async def test_the_session_table_is_unlogged(db: Database) -> None:
    """Crash recovery resets only unlogged tables: the detector depends on it."""
    persistence = await value(
        db, "SELECT relpersistence FROM pg_class WHERE relname = 'ingest_sessions'"
    )
    assert persistence == "u"


async def test_a_local_write_without_a_cursor_needs_no_session(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    """Write-then-index batches move no stream position: a restart cannot make them
    skip anything, so they neither open sessions nor fail after one was lost."""
    from tests.support.events import frames

    await indexer.load_cursor()
    await _crash_recovery(db)
    post = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    batch = indexer.prepare(frames(post))
    batch.cursor = None
    assert (await indexer.commit(batch)).applied == 1
    assert await value(db, "SELECT count(*) FROM ingest_sessions") == 0
    # the consumer's own batches still refuse until it reads its cursor again
    vote = stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI))
    with pytest.raises(SessionLost):
        await apply(indexer, vote)
