"""social.coves.actor.block records (user blocks) and actor profile dates."""

from __future__ import annotations

from coves.db import Database
from coves.ingest.indexer import Indexer
from tests.ingest.helpers import apply, one, value
from tests.support.events import ACTOR_PROFILE, Stream, did

ACTOR_BLOCK = "social.coves.actor.block"
ALICE = did("alice")
BOB = did("bob")
CAROL = did("carol")


def _block(subject: str, **extra: object) -> dict[str, object]:
    return {"subject": subject, "createdAt": "2026-02-03T04:05:06.000Z", **extra}


async def test_block_is_indexed_and_deleted(db: Database, indexer: Indexer, stream: Stream) -> None:
    await apply(indexer, stream.commit(ALICE, ACTOR_BLOCK, "3kblock000001", _block(BOB)))
    row = await one(db, "SELECT * FROM user_blocks")
    assert (row["blocker_did"], row["subject_did"], row["rkey"]) == (ALICE, BOB, "3kblock000001")
    assert row["uri"] == f"at://{ALICE}/{ACTOR_BLOCK}/3kblock000001"
    assert row["created_at"].isoformat() == "2026-02-03T04:05:06+00:00"
    assert row["deleted_at"] is None and row["rev"] is not None
    # Both accounts get a users row (the subject may never have written anything).
    assert await value(db, "SELECT count(*) FROM users WHERE did IN (%s, %s)", ALICE, BOB) == 2
    await apply(indexer, stream.delete(ALICE, ACTOR_BLOCK, "3kblock000001"))
    assert await value(db, "SELECT deleted_at IS NOT NULL FROM user_blocks") is True


async def test_block_without_created_at_takes_the_event_time(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    event = stream.commit(ALICE, ACTOR_BLOCK, "3kblock000002", {"subject": CAROL})
    await apply(indexer, event)
    at = await value(db, "SELECT extract(epoch FROM created_at) FROM user_blocks")
    assert abs(float(at) - event["time_us"] / 1e6) < 0.001


async def test_stale_and_replayed_block_events_change_nothing(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    create = stream.commit(ALICE, ACTOR_BLOCK, "3kblock000003", _block(BOB))
    delete = stream.delete(ALICE, ACTOR_BLOCK, "3kblock000003")
    await apply(indexer, create)
    await apply(indexer, delete)
    await apply(indexer, create)  # replayed older create: the delete's rev stands
    assert await value(db, "SELECT deleted_at IS NOT NULL FROM user_blocks") is True


async def test_invalid_blocks_are_dead_lettered(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(
        indexer,
        stream.commit(ALICE, ACTOR_BLOCK, "3kblock000004", _block(ALICE)),  # itself
        stream.commit(ALICE, ACTOR_BLOCK, "3kblock000005", _block("not-a-did")),
        stream.commit(ALICE, ACTOR_BLOCK, "3kblock000006", {"createdAt": "2026-01-01T00:00:00Z"}),
    )
    assert await value(db, "SELECT count(*) FROM user_blocks") == 0
    assert (
        await value(db, "SELECT count(*) FROM dead_letters WHERE collection = %s", ACTOR_BLOCK) == 3
    )


async def test_profile_created_at_comes_from_the_record(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    record = {"displayName": "Alice", "createdAt": "2023-05-06T07:08:09.000Z"}
    await apply(indexer, stream.commit(ALICE, ACTOR_PROFILE, "self", record))
    row = await one(db, "SELECT profile_created_at, created_at FROM users WHERE did = %s", ALICE)
    assert row["profile_created_at"].isoformat() == "2023-05-06T07:08:09+00:00"
    assert row["created_at"] != row["profile_created_at"]  # first seen is kept apart
    await apply(indexer, stream.delete(ALICE, ACTOR_PROFILE, "self"))
    assert await value(db, "SELECT profile_created_at FROM users WHERE did = %s", ALICE) is None
