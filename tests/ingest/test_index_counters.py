"""Counters of posts and comments that already exist take the batch's net change.

Each step below is a separate batch on rows written by an earlier batch, so
the counters are maintained incrementally (not recounted); after every step
they must equal a recount from rows, ranks included.
"""

from __future__ import annotations

from typing import Any

import trio

from coves.db import Database
from coves.ingest.indexer import Indexer
from tests.ingest.helpers import apply, one
from tests.ingest.test_properties import RECOUNT_MISMATCHES
from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    VOTE,
    Stream,
    comment_record,
    community_record,
    did,
    post_record,
    uri,
    vote_record,
)

COMMUNITY = did("community")
ALICE = did("alice")
BOB = did("bob")
CAROL = did("carol")
POST_URI = uri(COMMUNITY, POST, "3kpost0000001")
TOP = uri(BOB, COMMENT, "3kcomm0000001")


async def _counts(db: Database, subject: str) -> tuple[Any, ...]:
    table = "comments" if f"/{COMMENT}/" in subject else "posts"
    children = "reply_count" if table == "comments" else "comment_count"
    row = await one(
        db,
        f"SELECT upvote_count, downvote_count, score, {children} AS n FROM {table} WHERE uri = %s",
        subject,
    )
    with trio.fail_after(10):
        assert await db.fetch(RECOUNT_MISMATCHES) == []
    return (row["upvote_count"], row["downvote_count"], row["score"], row["n"])


async def _seed(indexer: Indexer, stream: Stream) -> None:
    await apply(
        indexer,
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
        stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI)),
    )


async def test_vote_changes_on_existing_subjects(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _seed(indexer, stream)
    await apply(
        indexer,
        stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI, "up")),
        stream.commit(BOB, VOTE, "3kvote0000001", vote_record(POST_URI, "down")),
        stream.commit(CAROL, VOTE, "3kvote0000001", vote_record(TOP, "up")),
    )
    assert await _counts(db, POST_URI) == (1, 1, 0, 1)
    assert await _counts(db, TOP) == (1, 0, 1, 0)

    # A direction flip of an effective vote.
    flip = vote_record(POST_URI, "down")
    await apply(indexer, stream.commit(ALICE, VOTE, "3kvote0000001", flip, operation="update"))
    assert await _counts(db, POST_URI) == (0, 2, -2, 1)

    # A newer vote record by the same voter on the same subject replaces it...
    await apply(indexer, stream.commit(ALICE, VOTE, "3kvote0000002", vote_record(POST_URI)))
    assert await _counts(db, POST_URI) == (1, 1, 0, 1)
    # ...and deleting the newer one makes the older one count again.
    await apply(indexer, stream.delete(ALICE, VOTE, "3kvote0000002"))
    assert await _counts(db, POST_URI) == (0, 2, -2, 1)

    # A vote moved from the post to the comment leaves one and counts on the other.
    moved = vote_record(TOP, "down")
    await apply(indexer, stream.commit(BOB, VOTE, "3kvote0000001", moved, operation="update"))
    assert await _counts(db, POST_URI) == (0, 1, -1, 1)
    assert await _counts(db, TOP) == (1, 1, 0, 0)

    # Replays of everything change nothing.
    await apply(
        indexer,
        stream.commit(BOB, VOTE, "3kvote0000001", moved, operation="update", rev="2222222222222"),
    )
    assert await _counts(db, TOP) == (1, 1, 0, 0)


async def test_comment_liveness_changes_on_existing_rows(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await _seed(indexer, stream)
    reply = uri(CAROL, COMMENT, "3kcomm0000002")
    # A reply, and another created and deleted in the same batch (never counted).
    await apply(
        indexer,
        stream.commit(CAROL, COMMENT, "3kcomm0000002", comment_record(POST_URI, TOP)),
        stream.commit(ALICE, COMMENT, "3kcomm0000003", comment_record(POST_URI, TOP)),
        stream.delete(ALICE, COMMENT, "3kcomm0000003"),
    )
    assert await _counts(db, POST_URI) == (0, 0, 0, 2)
    assert await _counts(db, TOP) == (0, 0, 0, 1)

    # An edit of a live comment counts once.
    edit = comment_record(POST_URI, TOP, "edited")
    await apply(indexer, stream.commit(CAROL, COMMENT, "3kcomm0000002", edit, operation="update"))
    assert await _counts(db, TOP) == (0, 0, 0, 1)

    await apply(indexer, stream.delete(CAROL, COMMENT, "3kcomm0000002"))
    assert await _counts(db, POST_URI) == (0, 0, 0, 1)
    assert await _counts(db, TOP) == (0, 0, 0, 0)

    # Recreated (a newer rev on the same record): counted again.
    await apply(
        indexer, stream.commit(CAROL, COMMENT, "3kcomm0000002", comment_record(POST_URI, TOP))
    )
    assert await _counts(db, POST_URI) == (0, 0, 0, 2)
    assert await _counts(db, TOP) == (0, 0, 0, 1)
    assert await _counts(db, reply) == (0, 0, 0, 0)


async def test_subject_arriving_after_its_votes_and_replies(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(
        indexer,
        stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(POST_URI, "up")),
        stream.commit(CAROL, VOTE, "3kvote0000001", vote_record(TOP, "down")),
        stream.commit(CAROL, COMMENT, "3kcomm0000002", comment_record(POST_URI, TOP)),
    )
    # The post arrives with one more vote on it in the same batch; the comment later.
    await apply(
        indexer,
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
        stream.commit(BOB, VOTE, "3kvote0000001", vote_record(POST_URI, "up")),
    )
    assert await _counts(db, POST_URI) == (2, 0, 2, 1)
    await apply(
        indexer,
        stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI)),
    )
    assert await _counts(db, POST_URI) == (2, 0, 2, 2)
    assert await _counts(db, TOP) == (0, 1, -1, 1)
    # And from then on it takes increments like any other row.
    await apply(indexer, stream.commit(ALICE, VOTE, "3kvote0000002", vote_record(TOP, "up")))
    assert await _counts(db, TOP) == (1, 1, 0, 1)


async def test_community_post_count_and_last_post_at(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    def post(rkey: str, created: str, operation: str = "create") -> dict[str, Any]:
        record = post_record(COMMUNITY, ALICE, createdAt=f"2024-{created}T00:00:00.000Z")
        return stream.commit(COMMUNITY, POST, rkey, record, operation=operation)

    async def community() -> tuple[Any, str]:
        row = await one(
            db, "SELECT post_count, last_post_at::date::text AS last FROM community_stats"
        )
        with trio.fail_after(10):
            assert await db.fetch(RECOUNT_MISMATCHES) == []
        return row["post_count"], row["last"]

    profile = community_record("c", "did:web:coves.test", COMMUNITY)
    # The community arrives after its first post, which is counted all the same.
    await apply(indexer, post("3kpost000000a", "01-01"))
    await apply(indexer, stream.commit(COMMUNITY, PROFILE, "self", profile))
    assert await community() == (1, "2024-01-01")
    # New posts only add.
    await apply(indexer, post("3kpost000000b", "02-01"))
    assert await community() == (2, "2024-02-01")
    # Deleting the newest one moves last_post_at back.
    await apply(indexer, stream.delete(COMMUNITY, POST, "3kpost000000b"))
    assert await community() == (1, "2024-01-01")
    # A new post and a delete in one batch.
    await apply(
        indexer, post("3kpost000000c", "03-01"), stream.delete(COMMUNITY, POST, "3kpost000000a")
    )
    assert await community() == (1, "2024-03-01")
    # An edit that moves createdAt back moves last_post_at back.
    await apply(indexer, post("3kpost000000c", "01-15", operation="update"))
    assert await community() == (1, "2024-01-15")
    # A resurrected post counts again.
    await apply(indexer, post("3kpost000000b", "02-01"))
    assert await community() == (2, "2024-02-01")
