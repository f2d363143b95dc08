"""Posts, comments and votes: lifecycle, rev gating, ordering and counters."""

from __future__ import annotations

from datetime import UTC, datetime

from coves.db import Database
from coves.ingest.indexer import Indexer
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
BOB = did("bob")
CAROL = did("carol")
POST_URI = uri(COMMUNITY, POST, "3kpost0000001")


def _post(stream: Stream, rkey: str = "3kpost0000001", **kw: object) -> dict[str, object]:
    return stream.commit(COMMUNITY, POST, rkey, post_record(COMMUNITY, ALICE, **kw))  # type: ignore[arg-type]


async def test_post_create_update_delete_and_resurrect(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(indexer, _post(stream, title="first"))
    row = await one(db, "SELECT title, edited_at, deleted_at, author_did FROM posts")
    assert row["title"] == "first" and row["edited_at"] is None and row["deleted_at"] is None
    assert row["author_did"] == ALICE
    # The author is known lazily, with no handle yet.
    assert await value(db, "SELECT handle IS NULL FROM users WHERE did = %s", ALICE) is True

    update = stream.commit(
        COMMUNITY,
        POST,
        "3kpost0000001",
        post_record(COMMUNITY, ALICE, title="second"),
        operation="update",
    )
    await apply(indexer, update)
    row = await one(db, "SELECT title, edited_at FROM posts")
    assert row["title"] == "second"
    assert row["edited_at"] == datetime.fromtimestamp(update["time_us"] / 1e6, UTC)

    await apply(indexer, stream.delete(COMMUNITY, POST, "3kpost0000001"))
    row = await one(db, "SELECT title, deleted_at FROM posts")
    assert row["deleted_at"] is not None and row["title"] == "second"  # soft: the row stays
    # No community row: its stats are kept all the same.
    assert await value(db, "SELECT post_count FROM community_stats") == 0

    await apply(indexer, _post(stream, title="third"))
    row = await one(db, "SELECT title, deleted_at, edited_at FROM posts")
    assert row == {"title": "third", "deleted_at": None, "edited_at": None}


async def test_stale_update_and_delete_do_not_overwrite(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    old_time = stream.tick()
    create = _post(stream, title="new")
    await apply(indexer, create)
    stale_update = stream.commit(
        COMMUNITY,
        POST,
        "3kpost0000001",
        post_record(COMMUNITY, ALICE, title="old"),
        operation="update",
        rev=tid(old_time),
    )
    stale_delete = stream.delete(COMMUNITY, POST, "3kpost0000001", rev=tid(old_time))
    result = await apply(indexer, stale_update, stale_delete, create)
    assert result.applied == 0 and result.skipped == 3
    assert result.reasons == {"stale": 3}
    row = await one(db, "SELECT title, deleted_at FROM posts")
    assert row == {"title": "new", "deleted_at": None}


async def test_delete_then_replayed_older_create_cannot_resurrect(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    create = _post(stream)
    delete = stream.delete(COMMUNITY, POST, "3kpost0000001")
    await apply(indexer, create)
    await apply(indexer, delete)
    await apply(indexer, create)  # at-least-once redelivery
    assert await value(db, "SELECT deleted_at IS NOT NULL FROM posts") is True
    # A delete that arrives before any create still leaves a tombstone.
    other_create = _post(stream, rkey="3kpost0000002")
    other_delete = stream.delete(COMMUNITY, POST, "3kpost0000002")
    await apply(indexer, other_delete)
    await apply(indexer, other_create)
    assert await value(db, "SELECT count(*) FROM posts WHERE rkey = '3kpost0000002'") == 0
    assert await value(db, "SELECT deleted FROM record_state WHERE rkey = '3kpost0000002'") is True


async def test_events_for_one_record_in_one_batch_collapse_to_the_newest(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    create = _post(stream, title="a")
    update = stream.commit(
        COMMUNITY,
        POST,
        "3kpost0000001",
        post_record(COMMUNITY, ALICE, title="b"),
        operation="update",
    )
    # Arrival order scrambled and duplicated: the highest rev wins.
    result = await apply(indexer, update, create, update)
    assert result.applied == 1
    assert result.reasons == {"superseded": 1, "stale": 1}
    assert await value(db, "SELECT title FROM posts") == "b"


async def test_future_created_at_gets_no_ranking_boost(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(indexer, _post(stream, createdAt="2999-01-01T00:00:00Z"))
    row = await one(db, "SELECT created_at, ranked_at, ranked_at <= now() AS capped FROM posts")
    assert row["created_at"].year == 2999
    assert row["capped"] is True


async def test_post_author_must_be_a_did(db: Database, indexer: Indexer, stream: Stream) -> None:
    event = stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, "alice"))
    result = await apply(indexer, event)
    assert result.dead_lettered == 1 and result.reasons == {"invalid_record": 1}
    assert await value(db, "SELECT count(*) FROM posts") == 0


async def test_comment_counts_whole_thread_and_direct_replies(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    top = uri(BOB, COMMENT, "3kcomm0000001")
    reply = uri(CAROL, COMMENT, "3kcomm0000002")
    await apply(
        indexer,
        _post(stream),
        stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI)),
        stream.commit(CAROL, COMMENT, "3kcomm0000002", comment_record(POST_URI, top)),
    )
    assert await value(db, "SELECT comment_count FROM posts") == 2
    assert await value(db, "SELECT reply_count FROM comments WHERE uri = %s", top) == 1
    assert await value(db, "SELECT reply_count FROM comments WHERE uri = %s", reply) == 0

    # Deleting the top comment keeps its row and place; the reply stays under it.
    await apply(indexer, stream.delete(BOB, COMMENT, "3kcomm0000001"))
    row = await one(
        db, "SELECT content, record, deleted_at, parent_uri FROM comments WHERE uri = %s", top
    )
    assert row["content"] is None and row["record"] is None and row["deleted_at"] is not None
    assert row["parent_uri"] == POST_URI
    assert await value(db, "SELECT comment_count FROM posts") == 1
    assert await value(db, "SELECT reply_count FROM comments WHERE uri = %s", top) == 1


async def test_children_before_parents_are_counted_when_parents_arrive(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    top = uri(BOB, COMMENT, "3kcomm0000001")
    reply_event = stream.commit(CAROL, COMMENT, "3kcomm0000002", comment_record(POST_URI, top))
    top_event = stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI))
    post_event = _post(stream)
    await apply(indexer, reply_event)
    await apply(indexer, top_event)
    assert await value(db, "SELECT reply_count FROM comments WHERE uri = %s", top) == 1
    await apply(indexer, post_event)
    assert await value(db, "SELECT comment_count FROM posts") == 2


async def test_threading_is_immutable_on_update(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    other_post = uri(COMMUNITY, POST, "3kpost0000009")
    create = stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI))
    await apply(indexer, create)
    moved = stream.commit(
        BOB,
        COMMENT,
        "3kcomm0000001",
        comment_record(other_post, other_post, "moved"),
        operation="update",
    )
    result = await apply(indexer, moved)
    assert result.reasons == {"immutable_threading": 1} and result.dead_lettered == 1
    row = await one(db, "SELECT root_uri, content FROM comments")
    assert row == {"root_uri": POST_URI, "content": "A comment"}
    assert await value(db, "SELECT reason FROM dead_letters") == "immutable_threading"

    edited = stream.commit(
        BOB,
        COMMENT,
        "3kcomm0000001",
        comment_record(POST_URI, POST_URI, "edited"),
        operation="update",
    )
    await apply(indexer, edited)
    row = await one(db, "SELECT content, edited_at IS NOT NULL AS edited FROM comments")
    assert row == {"content": "edited", "edited": True}


async def test_resurrected_comment_may_change_threading(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    other_post = uri(COMMUNITY, POST, "3kpost0000009")
    await apply(
        indexer,
        stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI)),
    )
    await apply(indexer, stream.delete(BOB, COMMENT, "3kcomm0000001"))
    await apply(
        indexer,
        stream.commit(
            BOB, COMMENT, "3kcomm0000001", comment_record(other_post, other_post, "back")
        ),
    )
    row = await one(db, "SELECT root_uri, content, deleted_at FROM comments")
    assert row == {"root_uri": other_post, "content": "back", "deleted_at": None}


async def test_vote_before_subject_is_counted_when_subject_arrives(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    vote = stream.commit(BOB, VOTE, "3kvote0000001", vote_record(POST_URI, "down"))
    await apply(indexer, vote)
    await apply(indexer, _post(stream))
    row = await one(db, "SELECT upvote_count, downvote_count, score FROM posts")
    assert row == {"upvote_count": 0, "downvote_count": 1, "score": -1}


async def test_second_vote_replaces_first_and_deleting_it_restores_the_first(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(indexer, _post(stream))
    up = stream.commit(BOB, VOTE, "3kvote0000001", vote_record(POST_URI, "up"))
    down = stream.commit(BOB, VOTE, "3kvote0000002", vote_record(POST_URI, "down"))
    result = await apply(indexer, up, down)
    assert result.applied == 2 and result.dead_lettered == 0
    row = await one(db, "SELECT upvote_count, downvote_count, score FROM posts")
    assert row == {"upvote_count": 0, "downvote_count": 1, "score": -1}
    effective = await db.fetch("SELECT rkey FROM votes WHERE effective")
    assert effective == [{"rkey": "3kvote0000002"}]

    await apply(indexer, stream.delete(BOB, VOTE, "3kvote0000002"))
    row = await one(db, "SELECT upvote_count, downvote_count, score FROM posts")
    assert row == {"upvote_count": 1, "downvote_count": 0, "score": 1}

    await apply(indexer, stream.delete(BOB, VOTE, "3kvote0000001"))
    row = await one(db, "SELECT upvote_count, downvote_count, score, hot_rank FROM posts")
    assert (row["upvote_count"], row["downvote_count"], row["score"]) == (0, 0, 0)


async def test_votes_on_comments_and_ranks(db: Database, indexer: Indexer, stream: Stream) -> None:
    comment = uri(BOB, COMMENT, "3kcomm0000001")
    await apply(
        indexer,
        _post(stream),
        stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI)),
        stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(comment, "up")),
        stream.commit(CAROL, VOTE, "3kvote0000002", vote_record(comment, "down")),
        stream.commit(BOB, VOTE, "3kvote0000003", vote_record(comment, "up")),
    )
    row = await one(
        db,
        "SELECT upvote_count, downvote_count, score, controversy_rank,"
        " hot_rank = coves_hot_rank(1, ranked_at) AS hot_ok FROM comments",
    )
    assert (row["upvote_count"], row["downvote_count"], row["score"]) == (2, 1, 1)
    assert row["hot_ok"] is True
    assert abs(row["controversy_rank"] - 3**0.5) < 1e-9
    assert await value(db, "SELECT upvote_count FROM posts") == 0


async def test_vote_subject_must_be_post_or_comment(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    bad = stream.commit(
        BOB, VOTE, "3kvote0000001", vote_record(uri(COMMUNITY, "app.bsky.feed.post", "x"))
    )
    result = await apply(indexer, bad)
    assert result.reasons == {"invalid_record": 1}
    assert await value(db, "SELECT count(*) FROM votes") == 0
