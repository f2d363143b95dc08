"""Search documents follow the posts the indexer writes: a batch's new posts (one
statement-level trigger per INSERT), edits and deletes (row trigger)."""

from __future__ import annotations

from coves.db import Database
from coves.ingest.indexer import Indexer
from tests.ingest.conftest import INSTANCE_DID
from tests.ingest.helpers import apply, value
from tests.support.events import (
    POST,
    PROFILE,
    Stream,
    community_record,
    did,
    post_record,
    uri,
)

COMMUNITY = did("community")
ALICE = did("alice")


async def matches(db: Database, word: str) -> list[str]:
    found = await value(
        db,
        "SELECT coalesce(array_agg(uri ORDER BY uri), '{}') FROM post_search"
        " WHERE document @@ plainto_tsquery('english', %s)",
        word,
    )
    return list(found)


async def test_a_batch_of_new_posts_gets_its_documents_edits_and_deletes_follow(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    rkeys = [f"3kpost000000{n}" for n in range(1, 6)]
    result = await apply(
        indexer,
        stream.commit(COMMUNITY, PROFILE, "self", community_record("g", INSTANCE_DID, ALICE)),
        *(
            stream.commit(COMMUNITY, POST, rkey, post_record(COMMUNITY, ALICE, f"walrus {rkey}"))
            for rkey in rkeys
        ),
    )
    assert result.applied == 6, result
    posts = [uri(COMMUNITY, POST, rkey) for rkey in rkeys]
    assert await matches(db, "walrus") == sorted(posts)

    await apply(
        indexer,
        stream.commit(
            COMMUNITY, POST, rkeys[0], post_record(COMMUNITY, ALICE, "narwhal"), operation="update"
        ),
        stream.delete(COMMUNITY, POST, rkeys[1]),
    )
    assert await matches(db, "narwhal") == [posts[0]]
    assert await matches(db, "walrus") == sorted(posts[2:])
