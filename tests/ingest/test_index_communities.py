"""Communities (verification), subscriptions, blocks, aggregators and actor profiles."""

from __future__ import annotations

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.metrics import Metrics
from tests.ingest.conftest import INSTANCE_DID
from tests.ingest.helpers import apply, one, value
from tests.support.events import (
    ACTOR_PROFILE,
    AGGREGATOR,
    AUTHORIZATION,
    BLOCK,
    POST,
    PROFILE,
    SUBSCRIPTION,
    Stream,
    aggregator_record,
    authorization_record,
    block_record,
    community_record,
    did,
    post_record,
    subscription_record,
)

COMMUNITY = did("community")
ALICE = did("alice")
BOB = did("bob")
BOT = did("bot")
FOREIGN = "did:web:other.example"


def _profile(
    stream: Stream, hosted_by: str, *, op: str = "create", **extra: object
) -> dict[str, object]:
    record = community_record("gaming", hosted_by, ALICE, **extra)
    return stream.commit(COMMUNITY, PROFILE, "self", record, operation=op)


async def test_local_community_is_verified_with_search_trigrams(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(indexer, _profile(stream, INSTANCE_DID, displayName="Gaming Hub"))
    row = await one(
        db,
        "SELECT name, display_name, hosted_by, created_by, verification, verified_at,"
        " search_trigrams, visibility, allow_external_discovery FROM communities",
    )
    assert row["verification"] == "verified" and row["verified_at"] is not None
    assert row["hosted_by"] == INSTANCE_DID and row["created_by"] == ALICE
    assert "gam" in row["search_trigrams"] and "hub" in row["search_trigrams"]
    assert row["visibility"] == "public" and row["allow_external_discovery"] is True
    assert await value(db, "SELECT count(*) FROM users WHERE did = %s", COMMUNITY) == 1


async def test_foreign_community_waits_for_verification(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    requests: list[tuple[str, str]] = []

    async def verify(community: str, hosted_by: str) -> None:
        requests.append((community, hosted_by))

    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, on_community_needs_verification=verify
    )
    await apply(indexer, _profile(stream, FOREIGN))
    assert await value(db, "SELECT verification FROM communities") == "unverified"
    assert requests == [(COMMUNITY, FOREIGN)]

    # The verifier confirms it; an update with the same hostedBy keeps the verdict.
    await db.execute("UPDATE communities SET verification = 'verified', verified_at = now()")
    await apply(indexer, _profile(stream, FOREIGN, op="update", description="new words"))
    row = await one(db, "SELECT verification, description FROM communities")
    assert row == {"verification": "verified", "description": "new words"}
    assert len(requests) == 1

    # Moving hostedBy sends it back to unverified with a new request.
    await apply(indexer, _profile(stream, "did:web:third.example", op="update"))
    assert await value(db, "SELECT verification FROM communities") == "unverified"
    assert requests[-1] == (COMMUNITY, "did:web:third.example")


async def test_skip_did_web_verification_trusts_foreign_hosts(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, skip_did_web_verification=True
    )
    await apply(indexer, _profile(stream, FOREIGN))
    assert await value(db, "SELECT verification FROM communities") == "verified"


async def test_verification_hook_failure_does_not_fail_the_batch(
    db: Database, metrics: Metrics, stream: Stream
) -> None:
    def broken(community: str, hosted_by: str) -> None:
        raise RuntimeError("verifier down")

    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=metrics, on_community_needs_verification=broken
    )
    result = await apply(indexer, _profile(stream, FOREIGN))
    assert result.applied == 1
    assert await value(db, "SELECT count(*) FROM communities") == 1


async def test_community_profile_rkey_must_be_self(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    event = stream.commit(COMMUNITY, PROFILE, "other", community_record("x", INSTANCE_DID, ALICE))
    result = await apply(indexer, event)
    assert result.reasons == {"security": 1}
    assert await value(db, "SELECT count(*) FROM communities") == 0
    assert await value(db, "SELECT reason FROM dead_letters") == "security"


async def test_community_delete_is_soft_and_counts_survive(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(
        indexer,
        _profile(stream, INSTANCE_DID),
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, BOB)),
    )
    await apply(indexer, stream.delete(COMMUNITY, PROFILE, "self"))
    row = await one(
        db,
        "SELECT deleted_at IS NOT NULL AS gone, post_count"
        " FROM communities JOIN community_stats USING (did)",
    )
    assert row == {"gone": True, "post_count": 1}


async def test_subscriptions_count_distinct_live_subscribers(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    # Subscriptions before the community exists are counted all the same.
    await apply(
        indexer,
        stream.commit(ALICE, SUBSCRIPTION, "3ksub00000001", subscription_record(COMMUNITY, 9)),
        stream.commit(ALICE, SUBSCRIPTION, "3ksub00000002", subscription_record(COMMUNITY)),
        stream.commit(BOB, SUBSCRIPTION, "3ksub00000003", subscription_record(COMMUNITY, 0)),
    )
    await apply(indexer, _profile(stream, INSTANCE_DID))
    assert await value(db, "SELECT subscriber_count FROM community_stats") == 2
    visibility = await db.fetch("SELECT rkey, content_visibility FROM subscriptions ORDER BY rkey")
    assert [r["content_visibility"] for r in visibility] == [5, 3, 1]  # clamped, default 3

    await apply(indexer, stream.delete(ALICE, SUBSCRIPTION, "3ksub00000001"))
    assert await value(db, "SELECT subscriber_count FROM community_stats") == 2
    await apply(indexer, stream.delete(ALICE, SUBSCRIPTION, "3ksub00000002"))
    assert await value(db, "SELECT subscriber_count FROM community_stats") == 1
    # Replaying the same deletes changes nothing.
    result = await apply(indexer, stream.delete(ALICE, SUBSCRIPTION, "3ksub00000002"))
    assert await value(db, "SELECT subscriber_count FROM community_stats") == 1
    assert result.applied == 1  # a newer rev is a new delete event, still idempotent


async def test_subscription_subject_must_be_a_did(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    result = await apply(
        indexer,
        stream.commit(ALICE, SUBSCRIPTION, "3ksub00000001", subscription_record("gaming")),  # type: ignore[arg-type]
    )
    assert result.reasons == {"invalid_record": 1}


async def test_blocks_are_stored_and_soft_deleted(
    db: Database, indexer: Indexer, stream: Stream
) -> None:
    await apply(indexer, stream.commit(ALICE, BLOCK, "3kblk00000001", block_record(COMMUNITY)))
    row = await one(db, "SELECT user_did, community_did, deleted_at FROM blocks")
    assert row == {"user_did": ALICE, "community_did": COMMUNITY, "deleted_at": None}
    await apply(indexer, stream.delete(ALICE, BLOCK, "3kblk00000001"))
    assert await value(db, "SELECT deleted_at IS NOT NULL FROM blocks") is True


async def test_aggregator_counters(db: Database, indexer: Indexer, stream: Stream) -> None:
    await apply(
        indexer,
        stream.commit(BOT, AGGREGATOR, "self", aggregator_record("News bot", did=BOT)),
        stream.commit(
            COMMUNITY, AUTHORIZATION, "3kauth0000001", authorization_record(COMMUNITY, BOT, ALICE)
        ),
        stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, BOT)),
    )
    row = await one(db, "SELECT display_name, communities_using, posts_created FROM aggregators")
    assert row == {"display_name": "News bot", "communities_using": 1, "posts_created": 1}

    disabled = authorization_record(
        COMMUNITY, BOT, ALICE, enabled=False, disabledAt="2026-01-03T00:00:00Z", disabledBy=ALICE
    )
    await apply(
        indexer,
        stream.commit(COMMUNITY, AUTHORIZATION, "3kauth0000001", disabled, operation="update"),
        stream.delete(COMMUNITY, POST, "3kpost0000001"),
    )
    row = await one(db, "SELECT communities_using, posts_created FROM aggregators")
    assert row == {"communities_using": 0, "posts_created": 0}
    auth = await one(db, "SELECT enabled, disabled_by FROM aggregator_authorizations")
    assert auth == {"enabled": False, "disabled_by": ALICE}


async def test_aggregator_security_checks(db: Database, indexer: Indexer, stream: Stream) -> None:
    result = await apply(
        indexer,
        stream.commit(BOT, AGGREGATOR, "self", aggregator_record(did=BOB)),
        stream.commit(BOT, AGGREGATOR, "other", aggregator_record(did=BOT)),
        stream.commit(
            ALICE, AUTHORIZATION, "3kauth0000001", authorization_record(COMMUNITY, BOT, ALICE)
        ),
    )
    assert result.reasons == {"security": 3}
    assert await value(db, "SELECT count(*) FROM aggregators") == 0
    assert await value(db, "SELECT count(*) FROM aggregator_authorizations") == 0


async def test_actor_profile_updates_user(db: Database, indexer: Indexer, stream: Stream) -> None:
    avatar = {"$type": "blob", "ref": {"$link": "bafkreiabc"}, "mimeType": "image/png", "size": 3}
    await apply(
        indexer,
        stream.commit(ALICE, ACTOR_PROFILE, "self", {"displayName": "Alice", "avatar": avatar}),
    )
    row = await one(db, "SELECT display_name, avatar FROM users WHERE did = %s", ALICE)
    assert row == {"display_name": "Alice", "avatar": avatar}
    await apply(indexer, stream.delete(ALICE, ACTOR_PROFILE, "self"))
    row = await one(db, "SELECT display_name, avatar FROM users WHERE did = %s", ALICE)
    assert row == {"display_name": None, "avatar": None}
