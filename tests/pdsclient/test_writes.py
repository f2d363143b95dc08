"""Write-then-index against the reference PDS: read-your-writes, echo-safe, failure-safe."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.ingest.types import Frame
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from coves.pds import (
    BearerAuth,
    PdsConflict,
    PdsConnections,
    PdsLimits,
    PdsUnavailable,
    RepoWriter,
)
from coves.pds.writes import commit_event
from tests.support.pds import PdsAccount, TestPds, free_port

INSTANCE_DID = "did:web:coves.test"
PROFILE = "social.coves.community.profile"
SUBSCRIPTION = "social.coves.community.subscription"


@pytest.fixture(scope="module")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


def make_indexer(db: Database, lexicons: LexiconRegistry) -> Indexer:
    return Indexer(db, instance_did=INSTANCE_DID, metrics=Metrics(), validator=lexicons)


@pytest.fixture
async def conns() -> AsyncIterator[PdsConnections]:
    connections = PdsConnections(metrics=Metrics())
    try:
        yield connections
    finally:
        await connections.aclose()


def profile(account: PdsAccount, creator: str, **fields: object) -> dict[str, object]:
    return {
        "$type": PROFILE,
        "name": account.handle.split(".")[0],
        "createdBy": creator,
        "hostedBy": INSTANCE_DID,
        "visibility": "public",
        "createdAt": "2025-01-01T00:00:00.000Z",
        **fields,
    }


async def echo(consumer: Indexer, did: str, collection: str, rkey: str, **commit: object) -> int:
    """Feed the stream's copy of a commit through a second indexer (the consumer's)."""
    data = commit_event(
        did=did,
        collection=collection,
        rkey=rkey,
        time_us=1_900_000_000_000_000,  # a later arrival than the local write
        **commit,  # type: ignore[arg-type]
    )
    result = await consumer.apply([Frame(data, 0.0)])
    return result.applied


async def test_profile_write_is_readable_at_once_and_the_echo_changes_nothing(
    pds: TestPds, db: Database, lexicons: LexiconRegistry, conns: PdsConnections
) -> None:
    with trio.fail_after(60):
        community = await pds.create_account()
        creator = await pds.create_account()
        writer = RepoWriter(make_indexer(db, lexicons))
        record = profile(community, creator.did, displayName="Gardening")
        written = await writer.put(
            conns.client(pds.url),
            BearerAuth(community.access_jwt),
            repo=community.did,
            collection=PROFILE,
            rkey="self",
            record=record,
            operation="create",
        )
        assert written.indexed
        assert written.uri == f"at://{community.did}/{PROFILE}/self"
        row = await db.fetchrow(
            "SELECT display_name, record_cid, verification, updated_at FROM communities"
            " WHERE did = %s",
            (community.did,),
        )
        assert row is not None
        assert row["display_name"] == "Gardening"
        assert row["record_cid"] == written.cid
        assert row["verification"] == "verified"

        consumer = make_indexer(db, lexicons)
        assert written.rev is not None
        applied = await echo(
            consumer,
            community.did,
            PROFILE,
            "self",
            operation="create",
            rev=written.rev,
            cid=written.cid,
            record=record,
        )
        assert applied == 0
        after = await db.fetchrow(
            "SELECT record_cid, updated_at FROM communities WHERE did = %s", (community.did,)
        )
        assert after == {"record_cid": written.cid, "updated_at": row["updated_at"]}


async def test_subscription_counts_at_once_and_once(
    pds: TestPds, db: Database, lexicons: LexiconRegistry, conns: PdsConnections
) -> None:
    with trio.fail_after(60):
        community = await pds.create_account()
        user = await pds.create_account()
        writer = RepoWriter(make_indexer(db, lexicons))
        client = conns.client(pds.url)
        await writer.put(
            client,
            BearerAuth(community.access_jwt),
            repo=community.did,
            collection=PROFILE,
            rkey="self",
            record=profile(community, user.did),
        )
        record = {
            "$type": SUBSCRIPTION,
            "subject": community.did,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "contentVisibility": 3,
        }
        written = await writer.create(
            client,
            BearerAuth(user.access_jwt),
            repo=user.did,
            collection=SUBSCRIPTION,
            record=record,
        )
        count = "SELECT subscriber_count FROM community_stats WHERE did = %s"
        assert await db.fetchval(count, (community.did,)) == 1

        assert written.rev is not None
        rkey = written.uri.rsplit("/", 1)[1]
        consumer = make_indexer(db, lexicons)
        assert (
            await echo(
                consumer,
                user.did,
                SUBSCRIPTION,
                rkey,
                operation="create",
                rev=written.rev,
                cid=written.cid,
                record=record,
            )
            == 0
        )
        assert await db.fetchval(count, (community.did,)) == 1

        deleted = await writer.delete(
            client, BearerAuth(user.access_jwt), repo=user.did, collection=SUBSCRIPTION, rkey=rkey
        )
        assert deleted.indexed
        assert await db.fetchval(count, (community.did,)) == 0


async def test_a_newer_stream_write_wins_over_an_older_local_one(
    pds: TestPds, db: Database, lexicons: LexiconRegistry, conns: PdsConnections
) -> None:
    with trio.fail_after(60):
        community = await pds.create_account()
        client = conns.client(pds.url)
        auth = BearerAuth(community.access_jwt)
        old = profile(community, community.did, displayName="Old")
        new = profile(community, community.did, displayName="New")
        first = await client.put_record(
            auth, repo=community.did, collection=PROFILE, rkey="self", record=old
        )
        second = await client.put_record(
            auth, repo=community.did, collection=PROFILE, rkey="self", record=new
        )
        assert first.rev is not None and second.rev is not None
        consumer = make_indexer(db, lexicons)
        await echo(
            consumer,
            community.did,
            PROFILE,
            "self",
            operation="update",
            rev=second.rev,
            cid=second.cid,
            record=new,
        )
        writer = RepoWriter(make_indexer(db, lexicons))
        # The local index of the older write arrives late: it must not undo the newer one.
        await writer.index(
            did=community.did,
            collection=PROFILE,
            rkey="self",
            operation="update",
            rev=first.rev,
            cid=first.cid,
            record=old,
        )
        assert (
            await db.fetchval(
                "SELECT display_name FROM communities WHERE did = %s", (community.did,)
            )
            == "New"
        )


async def test_a_failed_write_changes_nothing_locally(
    pds: TestPds, db: Database, lexicons: LexiconRegistry, conns: PdsConnections
) -> None:
    with trio.fail_after(60):
        community = await pds.create_account()
        writer = RepoWriter(make_indexer(db, lexicons))
        client = conns.client(pds.url)
        auth = BearerAuth(community.access_jwt)
        first = await writer.put(
            client,
            auth,
            repo=community.did,
            collection=PROFILE,
            rkey="self",
            record=profile(community, community.did, displayName="Kept"),
        )
        with pytest.raises(PdsConflict):
            await writer.put(
                client,
                auth,
                repo=community.did,
                collection=PROFILE,
                rkey="self",
                record=profile(community, community.did, displayName="Lost"),
                swap_record="bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua",
            )
        down = PdsConnections(metrics=Metrics(), limits=PdsLimits(backoff=0.01))
        try:
            with pytest.raises(PdsUnavailable):
                await writer.create(
                    down.client(f"http://127.0.0.1:{free_port()}"),
                    auth,
                    repo=community.did,
                    collection=SUBSCRIPTION,
                    record={"subject": community.did, "createdAt": "2025-01-01T00:00:00.000Z"},
                )
        finally:
            await down.aclose()
        row = await db.fetchrow(
            "SELECT display_name, record_cid FROM communities WHERE did = %s", (community.did,)
        )
        assert row == {"display_name": "Kept", "record_cid": first.cid}
        assert await db.fetchval("SELECT count(*) FROM subscriptions") == 0


async def test_a_record_the_indexer_refuses_is_reported_not_raised(
    pds: TestPds, db: Database, lexicons: LexiconRegistry, conns: PdsConnections
) -> None:
    """The PDS accepted it (it does not know our lexicon); our indexer refuses it."""
    with trio.fail_after(60):
        community = await pds.create_account()
        writer = RepoWriter(make_indexer(db, lexicons))
        written = await writer.put(
            conns.client(pds.url),
            BearerAuth(community.access_jwt),
            repo=community.did,
            collection=PROFILE,
            rkey="self",
            record={"$type": PROFILE, "name": "x"},  # no createdBy/hostedBy
        )
        assert written.cid is not None
        assert not written.indexed
        assert await db.fetchval("SELECT count(*) FROM communities") == 0
