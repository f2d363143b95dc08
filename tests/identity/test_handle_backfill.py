from __future__ import annotations

import trio

from coves.db import Database
from coves.identity import IdentityResolver
from nurseries.handles import HandleBackfill
from tests.support.fake_did import PLC_URL, FakeNetwork

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
CAROL = "did:plc:cccccccccccccccccccccccc"


async def user(db: Database, did: str) -> dict[str, object]:
    row = await db.fetchrow(
        "SELECT handle, pds_url, handle_checked_at FROM users WHERE did = %s", (did,)
    )
    assert row is not None
    return dict(row)


async def test_backfill_fills_verified_handles_and_backs_off_failures(db: Database) -> None:
    with trio.fail_after(20):
        net = FakeNetwork()
        net.add_plc(ALICE, None, "alice.example.com", pds="https://pds.one.com")
        net.add_plc(BOB, None, "bob.example.com")
        net.txt["_atproto.bob.example.com"] = [f"did={CAROL}"]  # not bidirectional
        for did in (ALICE, BOB, CAROL):  # CAROL does not resolve at all
            await db.execute("INSERT INTO users (did) VALUES (%s)", (did,))
        # Someone else held (verified) alice's handle before: it moves to the DID that
        # proves it, and that account is verified again itself.
        await db.execute(
            "INSERT INTO users (did, handle, handle_retry_at) VALUES "
            "('did:plc:olddddddddddddddddddddddd', 'alice.example.com', NULL)"
        )
        resolver = IdentityResolver(
            fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup
        )
        backfill = HandleBackfill(db, resolver, batch=10, rate=100.0)
        assert await backfill.run_batch() == 3
        alice = await user(db, ALICE)
        assert alice["handle"] == "alice.example.com"
        assert alice["pds_url"] == "https://pds.one.com"
        bob = await user(db, BOB)
        assert bob["handle"] is None and bob["handle_checked_at"] is not None
        assert (await user(db, CAROL))["handle_checked_at"] is not None
        assert (await user(db, "did:plc:olddddddddddddddddddddddd"))["handle"] is None
        # Failures wait their backoff; only the DID that just lost its handle is due now.
        assert await backfill.run_batch() == 1
        assert await backfill.run_batch() == 0
        assert (backfill.resolved, backfill.unresolved) == (1, 3)
        delays = await db.fetch(
            "SELECT did, extract(epoch FROM handle_retry_at - handle_checked_at) AS delay,"
            " handle_attempts FROM users WHERE did IN (%s, %s)",
            (BOB, CAROL),
        )
        assert {(r["delay"], r["handle_attempts"]) for r in delays} == {(30, 1)}


def test_retry_backoff_doubles_up_to_the_recheck_interval() -> None:
    backfill = HandleBackfill(None, None)  # type: ignore[arg-type]
    assert [backfill.retry_delay(n) for n in range(9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


async def test_an_identity_event_claiming_someone_elses_handle_changes_nothing(
    db: Database,
) -> None:
    """The impersonation: BOB's PDS announces alice's handle. Until verified, both keep
    what they had; verification leaves alice's handle with alice."""
    from coves.ingest.indexer import Indexer
    from coves.metrics import Metrics
    from tests.ingest.helpers import apply
    from tests.support.events import ACTOR_PROFILE, Stream

    with trio.fail_after(20):
        net = FakeNetwork()
        net.add_plc(ALICE, None, "alice.example.com")
        net.add_plc(BOB, None, "alice.example.com")  # bob's document claims it too ...
        net.txt["_atproto.alice.example.com"] = [f"did={ALICE}"]  # ... but DNS says alice
        resolver = IdentityResolver(
            fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup, db=db
        )
        indexer = Indexer(
            db,
            instance_did="did:web:coves.test",
            metrics=Metrics(),
            on_identity_change=[resolver.on_identity_change],
        )
        stream = Stream()
        await apply(indexer, *(stream.commit(d, ACTOR_PROFILE, "self", {}) for d in (ALICE, BOB)))
        backfill = HandleBackfill(db, resolver, batch=10, rate=100.0)
        await backfill.run_batch()
        assert (await user(db, ALICE))["handle"] == "alice.example.com"
        assert (await user(db, BOB))["handle"] is None
        await apply(indexer, stream.identity(BOB, "alice.example.com"))
        assert (await user(db, ALICE))["handle"] == "alice.example.com"
        assert await backfill.run_batch() == 1  # bob is verified again, and fails
        assert (await user(db, ALICE))["handle"] == "alice.example.com"
        assert (await user(db, BOB))["handle"] is None
        # A real change is shown once verified.
        net.add_plc(ALICE, None, "alice.new.example.com")
        await apply(indexer, stream.identity(ALICE, "alice.new.example.com"))
        assert (await user(db, ALICE))["handle"] == "alice.example.com"  # last verified
        assert await backfill.run_batch() == 1
        assert (await user(db, ALICE))["handle"] == "alice.new.example.com"


async def test_expired_cache_rows_are_pruned_hourly(db: Database) -> None:
    from datetime import timedelta

    from coves import clock
    from coves.db.queries import identity as q

    with trio.fail_after(20):
        now = clock.utcnow()
        for i, delta in enumerate((-10, -5, 3600)):
            await q.put_cached(
                db,
                "did",
                f"did:plc:{i}",
                did=None,
                value={"id": i},
                error=None,
                expires_at=now + timedelta(seconds=delta),
            )
        net = FakeNetwork()
        resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL)
        backfill = HandleBackfill(db, resolver)
        assert await backfill.prune_if_due() == 2
        assert await backfill.prune_if_due() == 0  # not due again for an hour
        assert await db.fetchval("SELECT count(*) FROM identity_cache") == 1
