"""The whole binary's data path, with real parts end to end.

A fake Jetstream (real websocket, real wire format) feeds the supervised
consumer started by ``run_server``; the indexer writes PostgreSQL; the read
API answers over real HTTP. What a user sees must match what the stream said.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from coves.config import test_settings
from coves.secrets import Secret
from nurseries.main import Runtime, run_server
from tests.support import events as ev
from tests.support.database import TestPostgres
from tests.support.fake_jetstream import FakeJetstream

INSTANCE = "did:web:localhost"
COMMUNITY = ev.did("e2e-community")
ALICE = ev.did("e2e-alice")
BOB = ev.did("e2e-bob")
POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"


async def wait_for(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], ready: Any
) -> dict[str, Any]:
    """Poll an XRPC query until ``ready(body)``; the stream is asynchronous."""
    last: Any = None
    with trio.move_on_after(15):
        while True:
            response = await client.get(path, params=params)
            last = (response.status_code, response.text[:2000])
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                if ready(body):
                    return body
            await trio.sleep(0.05)
    raise AssertionError(f"{path} never became ready; last answer: {last}")


async def test_stream_to_read_api(pg: TestPostgres) -> None:
    name = await trio.to_thread.run_sync(pg.create_database)
    stream = ev.Stream()
    fake = FakeJetstream()
    post_uri = ev.uri(COMMUNITY, POST, "3kpost00000001")
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                url = await nursery.start(fake.serve)
                settings = test_settings(
                    database_url=Secret(pg.conninfo(name)),
                    jetstream_enabled=True,
                    jetstream_url=url,
                    jetstream_batch_ms=20,
                    skip_did_web_verification=True,
                    host="127.0.0.1",
                    port=0,
                    rate_limit_general=100_000,
                )
                runtime: Runtime = await nursery.start(run_server, settings)
                base = runtime.bound[0]
                async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                    # With no stored cursor the consumer starts at the live tail.
                    await wait_for(
                        client,
                        "/xrpc/_health",
                        {},
                        lambda b: b["children"]["jetstream"]["details"]["state"] == "connected",
                    )
                    fake.publish(stream.identity(COMMUNITY, "e2e.community.localhost"))
                    fake.publish(
                        stream.commit(
                            COMMUNITY,
                            "social.coves.community.profile",
                            "self",
                            ev.community_record("e2e", INSTANCE, ALICE),
                        )
                    )
                    fake.publish(
                        stream.commit(
                            COMMUNITY, POST, "3kpost00000001", ev.post_record(COMMUNITY, ALICE)
                        )
                    )
                    comment_uri = ev.uri(BOB, COMMENT, "3kcomm00000001")
                    # A reply whose parent arrives after it, and a vote before its subject.
                    fake.publish(
                        stream.commit(
                            ALICE,
                            COMMENT,
                            "3kcomm00000002",
                            ev.comment_record(post_uri, comment_uri, "late parent"),
                        )
                    )
                    fake.publish(
                        stream.commit(ALICE, VOTE, "3kvote00000001", ev.vote_record(comment_uri))
                    )
                    fake.publish(
                        stream.commit(
                            BOB, COMMENT, "3kcomm00000001", ev.comment_record(post_uri, post_uri)
                        )
                    )
                    fake.publish(
                        stream.commit(BOB, VOTE, "3kvote00000002", ev.vote_record(post_uri))
                    )
                    fake.publish(
                        stream.commit(ALICE, VOTE, "3kvote00000003", ev.vote_record(post_uri))
                    )
                    # A malformed event is dead-lettered, not fatal.
                    fake.publish(
                        {"did": BOB, "time_us": stream.tick(), "kind": "commit", "commit": 7}
                    )

                    feed = await wait_for(
                        client,
                        "/xrpc/social.coves.communityFeed.getCommunity",
                        {"community": COMMUNITY, "sort": "new"},
                        lambda b: (
                            b["feed"]
                            and b["feed"][0]["post"]["stats"]["upvotes"] == 2
                            and b["feed"][0]["post"]["stats"]["commentCount"] == 2
                        ),
                    )
                    post = feed["feed"][0]["post"]
                    assert post["uri"] == post_uri
                    assert post["stats"]["score"] == 2

                    thread = await wait_for(
                        client,
                        "/xrpc/social.coves.community.comment.getComments",
                        {"post": post_uri, "sort": "new"},
                        lambda b: len(b.get("comments", [])) == 1,
                    )
                    top = thread["comments"][0]
                    assert top["comment"]["uri"] == comment_uri
                    assert top["comment"]["stats"]["upvotes"] == 1
                    assert [r["comment"]["uri"] for r in top["replies"]] == [
                        ev.uri(ALICE, COMMENT, "3kcomm00000002")
                    ]

                    # Live: an event published now shows up without a reconnect.
                    fake.publish(stream.delete(BOB, VOTE, "3kvote00000002"))
                    await wait_for(
                        client,
                        "/xrpc/social.coves.communityFeed.getCommunity",
                        {"community": COMMUNITY, "sort": "new", "limit": 10},
                        lambda b: b["feed"][0]["post"]["stats"]["upvotes"] == 1,
                    )
                    health = (await client.get("/xrpc/_health")).json()
                    assert health["children"]["jetstream"]["status"] == "running"

                    cursor = await runtime.db.fetchval("SELECT max(time_us) FROM ingest_cursor")  # type: ignore[union-attr]
                    assert cursor == fake.events[-1]["time_us"]
                    dead = await runtime.db.fetchval("SELECT count(*) FROM dead_letters")  # type: ignore[union-attr]
                    assert dead == 1
                nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(pg.drop_database, name)
