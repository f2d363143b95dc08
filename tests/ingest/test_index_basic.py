from __future__ import annotations

import trio

from coves.db import Database
from coves.ingest.indexer import Indexer
from tests.ingest.conftest import INSTANCE_DID
from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    VOTE,
    Stream,
    comment_record,
    community_record,
    did,
    frames,
    post_record,
    uri,
    vote_record,
)

COMMUNITY = did("community")
ALICE = did("alice")
BOB = did("bob")


async def test_post_comment_vote_counts(db: Database, indexer: Indexer, stream: Stream) -> None:
    post = uri(COMMUNITY, POST, "3kpost0000001")
    with trio.fail_after(10):
        result = await indexer.apply(
            frames(
                stream.commit(
                    COMMUNITY, PROFILE, "self", community_record("gaming", INSTANCE_DID, ALICE)
                ),
                stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
                stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(post, post)),
                stream.commit(BOB, VOTE, "3kvote0000001", vote_record(post, "up")),
            )
        )
        assert result.applied == 4, result
        assert result.dead_lettered == 0
        row = await db.fetchrow(
            "SELECT upvote_count, score, comment_count FROM posts WHERE uri = %s", (post,)
        )
        assert row == {"upvote_count": 1, "score": 1, "comment_count": 1}
        community = await db.fetchrow(
            "SELECT post_count, verification FROM communities JOIN community_stats USING (did)"
            " WHERE did = %s",
            (COMMUNITY,),
        )
        assert community == {"post_count": 1, "verification": "verified"}
        assert await indexer.load_cursor() == result.cursor
