"""End to end: fake firehose (real frames, real signed repos) → consumer → FirehoseSink →
the real Indexer → PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from coves.atproto.keys import PrivateKey
from coves.db import Database
from coves.ingest.firehose_sink import FirehoseSink
from coves.ingest.indexer import Indexer
from coves.ingest.types import Frame, in_thread
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from nurseries.jetstream import FIREHOSE, ConsumerConfig, JetstreamConsumer
from tests.ingest.helpers import value
from tests.support.consumer import wait_for
from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    VOTE,
    comment_record,
    community_record,
    did,
    post_record,
    uri,
    vote_record,
)
from tests.support.fake_firehose import FakeFetcher, FakeFirehose, FakeKeys
from tests.support.fake_repo import Write, commit_body, encode_frame

INSTANCE_DID = "did:web:coves.test"
COMMUNITY = did("community")
ALICE, BOB = did("alice"), did("bob")
POST_URI = uri(COMMUNITY, POST, "3kpost0000001")
SOURCE = "firehose:pds.test"


@asynccontextmanager
async def running(
    db: Database,
    lexicons: LexiconRegistry,
    fake: FakeFirehose,
    *,
    verify: bool = False,
    fetcher: Any = None,
    metrics: Metrics | None = None,
    source: str = SOURCE,
) -> AsyncIterator[tuple[JetstreamConsumer, FirehoseSink]]:
    metrics = metrics or Metrics()
    sink = make_sink(
        db, lexicons, fake, verify=verify, fetcher=fetcher, metrics=metrics, source=source
    )
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(
            url="ws://pds.test",
            kind=FIREHOSE,
            name=source,
            batch_size=5,
            batch_ms=20,
            rewind_seconds=0.0,
            backoff_base=0.01,
            backoff_cap=0.05,
        ),
        opener=fake.opener(),
        metrics=metrics,
        rng=random.Random(3),
    )
    async with fake.running(), trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        yield consumer, sink
        nursery.cancel_scope.cancel()


def make_sink(
    db: Database,
    lexicons: LexiconRegistry,
    fake: FakeFirehose,
    *,
    verify: bool = False,
    fetcher: Any = None,
    metrics: Metrics | None = None,
    source: str = SOURCE,
) -> FirehoseSink:
    """The source's sink over the real indexer; keys and fetches from ``fake``."""
    metrics = metrics or Metrics()
    indexer = Indexer(db, instance_did=INSTANCE_DID, metrics=metrics, validator=lexicons)
    return FirehoseSink(
        indexer,
        db,
        source=source,
        metrics=metrics,
        verify=verify,
        keys=FakeKeys(fake),
        fetcher=fetcher if fetcher is not None else fake.fetcher(),
    )


def _community(fake: FakeFirehose) -> int:
    return fake.create(COMMUNITY, PROFILE, "self", community_record("gaming", INSTANCE_DID, ALICE))


def _forged_vote(fake: FakeFirehose) -> int:
    """A community and its post, then Mallory signing a vote in Bob's repo with her key."""
    _community(fake)
    fake.create(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
    forged = fake.repo(BOB).commit(
        [Write("create", VOTE, "3kvote0000001", vote_record(POST_URI))],
        sign_with=PrivateKey.generate(),
    )
    return fake.write(BOB, commit=forged)[0]


async def test_commits_reach_the_index_and_the_cursor_is_the_seq(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        _community(fake)
        fake.create(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
        fake.create(ALICE, "app.bsky.feed.like", "3klike", {"subject": "x"})  # not ours
        async with running(db, lexicons, fake) as (consumer, sink):
            await fake.wait_for_connections(1)
            fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI, "up"))
            fake.create(ALICE, VOTE, "3kvote0000002", vote_record(POST_URI, "down"))
            last = fake.create(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI))
            await wait_for(lambda: consumer.cursor == last)
            await fake.drop(abnormal=True)
            # published while disconnected: must come through the seq cursor
            fake.delete(ALICE, VOTE, "3kvote0000002")
            await fake.wait_for_connections(2)
            last = fake.identity_event(ALICE, "alice.test")
            await wait_for(lambda: consumer.cursor == last)

    # cursor=0 first (a fresh database takes everything kept), then the stored seq.
    assert [r.cursor for r in fake.requests] == [0, 6]
    assert await value(db, "SELECT time_us FROM ingest_cursor WHERE name = %s", SOURCE) == last
    row = await db.fetchrow(
        "SELECT upvote_count, downvote_count, comment_count FROM posts WHERE uri = %s",
        (POST_URI,),
    )
    assert row == {"upvote_count": 1, "downvote_count": 0, "comment_count": 1}
    # The identity event was applied: the handle it names awaits verification both ways.
    applied = "SELECT handle IS NULL AND identity_time_us > 0 FROM users WHERE did = %s"
    assert await value(db, applied, ALICE) is True
    assert consumer.events["dead_lettered"] == 0
    assert sink.stats.gaps == 0 and sink.stats.frames["commit"] == 7
    assert consumer.health()["kind"] == "firehose"


async def test_restart_resumes_from_the_stored_seq_and_doubles_nothing(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        _community(fake)
        fake.create(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
        async with running(db, lexicons, fake) as (consumer, _):
            last = fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
            await wait_for(lambda: consumer.cursor == last)
        fake.create(ALICE, VOTE, "3kvote0000002", vote_record(POST_URI))
        async with running(db, lexicons, fake) as (consumer, _):
            last = fake.create(ALICE, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI))
            await wait_for(lambda: consumer.cursor == last)
    assert fake.requests[-1].cursor == 3
    row = await db.fetchrow(
        "SELECT upvote_count, comment_count FROM posts WHERE uri = %s", (POST_URI,)
    )
    assert row == {"upvote_count": 2, "comment_count": 1}


async def test_outdated_cursor_and_seq_gaps_are_counted(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake, metrics = FakeFirehose(keep=2), Metrics()
    await db.execute("INSERT INTO ingest_cursor (name, time_us) VALUES (%s, 1)", (SOURCE,))
    with trio.fail_after(30):
        for i in range(5):
            fake.create(BOB, VOTE, f"3kvote000000{i}", vote_record(POST_URI))
        async with running(db, lexicons, fake, metrics=metrics) as (consumer, sink):
            await wait_for(lambda: consumer.cursor == 5)
            fake.skip(10)
            last = fake.create(BOB, VOTE, "3kvote0000009", vote_record(POST_URI))
            await wait_for(lambda: consumer.cursor == last)
    assert last == 16
    assert sink.stats.outdated_cursor == 1
    assert sink.stats.gaps == 2  # the server's jump from 1 to 4, then 5 to 16
    assert sink.stats.gap_events == 2 + 10
    rendered = metrics.render().decode()
    assert f'coves_firehose_outdated_cursor_total{{source="{SOURCE}"}} 1.0' in rendered
    assert f'coves_firehose_seq_gap_events_total{{source="{SOURCE}"}} 12.0' in rendered


async def test_each_source_has_its_own_metrics(db: Database, lexicons: LexiconRegistry) -> None:
    """Two FIREHOSE_URL entries: one source up, the other refusing us. Their state,
    lag and counts are series of their own, not one series both overwrite."""
    up, down = FakeFirehose(), FakeFirehose(refuse_status=503)
    metrics = Metrics()
    other = "firehose:other.test"
    with trio.fail_after(30):
        _community(up)
        async with (
            running(db, lexicons, up, metrics=metrics) as (good, _),
            running(db, lexicons, down, metrics=metrics, source=other) as (bad, _),
        ):
            await wait_for(lambda: good.cursor == 1 and bad.reconnects["rejected"] >= 2)
            rendered = metrics.render().decode()

    def sample(name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(rendered):
            for found in family.samples:
                if found.name == name and found.labels == labels:
                    return float(found.value)
        raise AssertionError(f"no {name}{labels} in\n{rendered}")

    state = "coves_firehose_connection_state"
    assert sample(state, source=SOURCE, state="connected") == 1.0
    assert sample(state, source=other, state="connected") == 0.0
    assert sample(state, source=SOURCE, state="backoff") == 0.0
    assert sample("coves_firehose_batches_total", source=SOURCE) >= 1
    assert sample("coves_firehose_batches_total", source=other) == 0
    assert sample("coves_firehose_reconnects_total", source=other, reason="rejected") >= 2
    assert sample("coves_firehose_frame_types_total", source=SOURCE, type="commit") == 1
    assert sample("coves_firehose_lag_seconds", source=SOURCE) >= 0
    assert f'coves_firehose_lag_seconds{{source="{other}"}}' not in rendered  # nothing applied


async def test_a_future_cursor_is_an_error_frame_reported_and_retried(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
    await db.execute("INSERT INTO ingest_cursor (name, time_us) VALUES (%s, 50)", (SOURCE,))
    with trio.fail_after(30):
        async with running(db, lexicons, fake) as (consumer, sink):
            # each error frame is applied before its connection's end is recorded
            await wait_for(lambda: sink.stats.errors >= 2 and consumer.reconnects["closed"] >= 2)
    assert consumer.cursor == 50  # never moved back silently
    assert sink.stats.frames["error"] == sink.stats.errors


async def test_verified_commits_apply_and_forged_ones_are_dead_lettered(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        _forged_vote(fake)
        # A relay swaps the record for another that the signed tree does not hold.
        honest = fake.repo(ALICE).commit(
            [Write("create", VOTE, "3kvote0000002", vote_record(POST_URI, "up"))]
        )
        body = commit_body(honest, fake.next_seq, fake.tick())
        body["ops"] = [{**body["ops"][0], "path": f"{VOTE}/3kvote0000003"}]
        fake.publish_frame(encode_frame("#commit", body))
        last = fake.create(ALICE, VOTE, "3kvote0000004", vote_record(POST_URI, "down"))
        async with running(db, lexicons, fake, verify=True) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    reasons = await db.fetch("SELECT reason, rkey FROM dead_letters ORDER BY id")
    assert reasons == [
        {"reason": "bad_signature", "rkey": "3kvote0000001"},
        {"reason": "bad_proof", "rkey": "3kvote0000003"},
    ]
    row = await db.fetchrow(
        "SELECT upvote_count, downvote_count FROM posts WHERE uri = %s", (POST_URI,)
    )
    assert row == {"upvote_count": 0, "downvote_count": 1}


async def test_without_verification_a_forged_commit_is_indexed(
    db: Database, lexicons: LexiconRegistry
) -> None:
    """The check is what refuses forgeries (FIREHOSE_VERIFY=false trusts the source)."""
    fake = FakeFirehose()
    with trio.fail_after(30):
        last = _forged_vote(fake)
        async with running(db, lexicons, fake) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    assert await value(db, "SELECT upvote_count FROM posts WHERE uri = %s", POST_URI) == 1


@pytest.mark.parametrize("verify", [False, True])
async def test_too_big_commits_fetch_their_records_from_the_pds(
    db: Database, lexicons: LexiconRegistry, verify: bool
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        _community(fake)
        last, _ = fake.write(
            COMMUNITY,
            Write("create", POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
            too_big=True,
        )
        fetcher = fake.fetcher()
        async with running(db, lexicons, fake, verify=verify, fetcher=fetcher) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    assert fetcher.calls == 1
    assert await value(db, "SELECT title FROM posts WHERE uri = %s", POST_URI) == "A post"


async def test_a_failed_fetch_is_dead_lettered_and_ingestion_goes_on(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        fake.write(
            COMMUNITY,
            Write("create", POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
            too_big=True,
        )
        last = _community(fake)
        fetcher = FakeFetcher(fake, fail=True)
        async with running(db, lexicons, fake, fetcher=fetcher) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    assert await value(db, "SELECT reason FROM dead_letters") == "fetch_failed"
    assert await value(db, "SELECT count(*) FROM communities") == 1


async def test_sync_reindexes_the_repository_and_deletes_what_vanished(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        _community(fake)
        fake.create(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
        fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
        fake.create(BOB, VOTE, "3kvote0000002", vote_record(uri(COMMUNITY, POST, "3kpost0000002")))
        async with running(db, lexicons, fake) as (consumer, _):
            await wait_for(lambda: consumer.cursor == 4)
            # Bob's repository is replaced behind the stream's back (an import):
            # one vote gone, one changed, one new; only #sync tells us.
            repo = fake.repo(BOB)
            repo.commit(
                [
                    Write("delete", VOTE, "3kvote0000001"),
                    Write("create", VOTE, "3kvote0000003", vote_record(POST_URI, "down")),
                ]
            )
            last = fake.sync_event(BOB)
            await wait_for(lambda: consumer.cursor == last)
    votes = await db.fetch(
        "SELECT rkey FROM votes WHERE voter_did = %s AND deleted_at IS NULL ORDER BY rkey", (BOB,)
    )
    assert [v["rkey"] for v in votes] == ["3kvote0000002", "3kvote0000003"]
    row = await db.fetchrow(
        "SELECT upvote_count, downvote_count FROM posts WHERE uri = %s", (POST_URI,)
    )
    assert row == {"upvote_count": 0, "downvote_count": 1}


async def test_account_events_and_malformed_frames(db: Database, lexicons: LexiconRegistry) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
        fake.publish_frame(b"\x00garbage")
        last = fake.account_event(BOB, active=False, status="deactivated")
        async with running(db, lexicons, fake) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    assert await value(db, "SELECT active FROM users WHERE did = %s", BOB) is False
    assert await value(db, "SELECT reason FROM dead_letters") == "bad_envelope"


async def test_sync_of_a_repository_we_index_nothing_of_fetches_nothing(
    db: Database, lexicons: LexiconRegistry
) -> None:
    fake = FakeFirehose()
    with trio.fail_after(30):
        fake.repo(ALICE).commit([Write("create", "app.bsky.feed.post", "3k1", {"text": "hi"})])
        last = fake.sync_event(ALICE)
        fetcher = fake.fetcher()
        async with running(db, lexicons, fake, fetcher=fetcher) as (consumer, _):
            await wait_for(lambda: consumer.cursor == last)
    assert fetcher.calls == 0


async def test_a_sync_is_staged_only_after_the_batch_before_it_has_committed(
    db: Database, lexicons: LexiconRegistry
) -> None:
    """The consumer stages batch N+1 while N commits; a #sync compares the repository
    with the index, so it must see N's rows (here: the vote it has to delete)."""
    fake = FakeFirehose()
    sink = make_sink(db, lexicons, fake)
    with trio.fail_after(30):
        await sink.load_cursor()
        _community(fake)
        fake.create(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
        fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
        first = [Frame(frame, 0.0) for frame in fake.frames]
        # The vote vanishes from Bob's repository behind the stream's back.
        fake.repo(BOB).commit([Write("delete", VOTE, "3kvote0000001")])
        fake.sync_event(BOB)
        second = [Frame(fake.frames[-1], 0.0)]

        staged_first = await sink.stage(first, in_thread)
        staged: dict[str, Any] = {}

        async def stage_second() -> None:
            staged["second"] = await sink.stage(second, in_thread)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stage_second)
            await trio.sleep(0.5)
            assert "second" not in staged  # waiting for the first batch's commit
            await sink.commit(staged_first)
        assert await value(db, "SELECT count(*) FROM votes WHERE deleted_at IS NULL") == 1
        await sink.commit(staged["second"])
    assert await value(db, "SELECT count(*) FROM votes WHERE deleted_at IS NULL") == 0


async def test_a_new_session_does_not_wait_for_a_batch_staged_in_the_last_one(
    db: Database, lexicons: LexiconRegistry
) -> None:
    """A batch staged and then dropped (the database went away before its commit)
    must not hold up a #sync after the consumer reconnects."""
    fake = FakeFirehose()
    sink = make_sink(db, lexicons, fake)
    with trio.fail_after(30):
        await sink.load_cursor()
        _community(fake)
        fake.create(BOB, VOTE, "3kvote0000001", vote_record(POST_URI))
        await sink.stage([Frame(frame, 0.0) for frame in fake.frames], in_thread)  # never committed
        await sink.load_cursor()  # the reconnect
        sync = fake.sync_event(BOB)
        result = await sink.commit(
            await sink.stage([Frame(frame, 0.0) for frame in fake.frames], in_thread)
        )
    assert result.cursor == sync
    assert await value(db, "SELECT count(*) FROM votes WHERE deleted_at IS NULL") == 1
