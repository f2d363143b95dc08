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


async def test_backfill_fills_verified_handles_and_stamps_failures(db: Database) -> None:
    with trio.fail_after(20):
        net = FakeNetwork()
        net.add_plc(ALICE, None, "alice.example.com", pds="https://pds.one.com")
        net.add_plc(BOB, None, "bob.example.com")
        net.txt["_atproto.bob.example.com"] = [f"did={CAROL}"]  # not bidirectional
        for did in (ALICE, BOB, CAROL):  # CAROL does not resolve at all
            await db.execute("INSERT INTO users (did) VALUES (%s)", (did,))
        # Someone else held alice's handle before: it moves to the DID that proves it.
        await db.execute(
            "INSERT INTO users (did, handle) VALUES ('did:plc:olddddddddddddddddddddddd', "
            "'alice.example.com')"
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
        # Failures were stamped, so the next batch does not retry them; only the DID
        # that just lost its handle is looked up again.
        assert await backfill.run_batch() == 1
        assert await backfill.run_batch() == 0
        assert (backfill.resolved, backfill.unresolved) == (1, 3)


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
