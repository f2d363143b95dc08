"""End to end: records applied by the real indexer, read back through the API."""

from __future__ import annotations

import trio

from coves.clock import utcnow
from coves.db import Database
from coves.db.queries.identity import set_user_identity
from coves.ingest.indexer import Indexer
from coves.metrics import Metrics
from tests.read.conftest import Client
from tests.support.events import (
    POST,
    PROFILE,
    SUBSCRIPTION,
    VOTE,
    Stream,
    community_record,
    did,
    frames,
    post_record,
    subscription_record,
    vote_record,
)

INSTANCE = "did:web:localhost"  # test_settings' INSTANCE_DID
COMMUNITY = did("gaming")
ALICE = did("alice")
VIEWER = did("viewer")
VOTERS = [did(f"voter{i}") for i in range(3)]


async def test_indexed_records_are_served(client: Client, db: Database) -> None:
    indexer = Indexer(db, instance_did=INSTANCE, metrics=Metrics())
    stream = Stream()
    post_uri = f"at://{COMMUNITY}/{POST}/3kpost0000001"
    events = [
        stream.commit(
            COMMUNITY,
            PROFILE,
            "self",
            community_record("gaming", INSTANCE, ALICE, description="all about games"),
        ),
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
        stream.commit(VIEWER, SUBSCRIPTION, "3ksub00000001", subscription_record(COMMUNITY)),
        *[
            stream.commit(v, VOTE, "3kvote0000001", vote_record(post_uri, d))
            for v, d in zip(VOTERS, ("up", "up", "down"), strict=True)
        ],
    ]
    with trio.fail_after(30):
        await indexer.apply(frames(*events))
        # Handles are shown once verified both ways (the handles child does that).
        for account, handle in ((COMMUNITY, "gaming.community.localhost"), (ALICE, "alice.test")):
            await set_user_identity(db, account, handle, None, utcnow())

        status, body = await client.get(
            "social.coves.feed.getCommunity", {"community": "!gaming@localhost"}
        )
        assert status == 200, body
        [item] = body["feed"]
        post = item["post"]
        assert post["uri"] == post_uri
        assert post["author"]["handle"] == "alice.test"
        assert post["community"]["handle"] == "gaming.community.localhost"
        assert post["stats"] == {"upvotes": 2, "downvotes": 1, "score": 1, "commentCount": 0}

        status, body = await client.get("social.coves.feed.getTimeline", {}, viewer=VIEWER)
        assert status == 200 and [i["post"]["uri"] for i in body["feed"]] == [post_uri]

        status, body = await client.get("social.coves.community.search", {"q": "games"})
        assert status == 200 and [c["did"] for c in body["communities"]] == [COMMUNITY]

        status, body = await client.get(
            "social.coves.community.get", {"community": COMMUNITY}, viewer=VIEWER
        )
        assert status == 200
        assert body["subscriberCount"] == 1 and body["postCount"] == 1
        assert body["viewer"]["subscribed"] is True

        await indexer.apply(frames(stream.delete(COMMUNITY, POST, "3kpost0000001")))
        status, body = await client.get("social.coves.community.post.get", {"uris": post_uri})
        assert status == 200 and body["posts"][0]["deleted"] is True
        status, body = await client.get("social.coves.feed.getDiscover", {"sort": "new"})
        assert body == {"feed": []}
