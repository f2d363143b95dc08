"""The did:web verifier child against a real database (real clock, short intervals)."""

from __future__ import annotations

import orjson
import trio

from coves.db import Database
from coves.identity import IdentityResolver
from coves.identity.hosted_by import HostedByQueue, HostedByVerifier
from coves.metrics import Metrics
from nurseries.didweb import DidWebVerifierChild
from tests.support.fake_did import PLC_URL, FakeNetwork, did_document

INSTANCE = "did:web:local.example"
GOOD = "did:plc:gggggggggggggggggggggggg"
BAD = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
LOCAL = "did:plc:llllllllllllllllllllllll"


async def add_community(db: Database, did: str, name: str, hosted_by: str) -> None:
    await db.execute(
        """
        INSERT INTO communities (did, name, created_by, hosted_by, record, record_cid, created_at)
        VALUES (%s, %s, %s, %s, %s, 'bafycid', now())
        """,
        (did, name, did, hosted_by, orjson.dumps({"name": name}).decode()),
    )


async def state(db: Database, did: str) -> tuple[str, str | None, bool]:
    row = await db.fetchrow(
        "SELECT verification, verification_reason, verified_at FROM communities WHERE did = %s",
        (did,),
    )
    assert row is not None
    return row["verification"], row["verification_reason"], row["verified_at"] is not None


def make_child(
    db: Database, queue: HostedByQueue, **kw: object
) -> tuple[FakeNetwork, DidWebVerifierChild]:
    net = FakeNetwork()
    net.add_plc(GOOD, None, "good.c.remote.com")
    net.add_plc(BAD, None, "bad.c.elsewhere.com")
    net.web["remote.com"] = did_document("did:web:remote.com", also_known_as=["at://remote.com"])
    resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    verifier = HostedByVerifier(resolver, resolver.did_fetcher)
    metrics = Metrics()
    child = DidWebVerifierChild(db, queue, verifier, INSTANCE, metrics=metrics, **kw)  # type: ignore[arg-type]
    child.metrics_registry = metrics.registry  # type: ignore[attr-defined]
    return net, child


async def test_process_flips_verified_and_rejected(db: Database) -> None:
    with trio.fail_after(20):
        await add_community(db, GOOD, "good", "did:web:remote.com")
        await add_community(db, BAD, "bad", "did:web:remote.com")
        _net, child = make_child(db, HostedByQueue())
        assert (await child.process(GOOD, "did:web:remote.com")).verified
        assert (await child.process(BAD, "did:web:remote.com")).outcome == "rejected"
        assert await state(db, GOOD) == ("verified", None, True)
        verification, reason, verified_at = await state(db, BAD)
        assert verification == "rejected" and reason and not verified_at
        assert child.counts["verified"] == 1 and child.counts["rejected"] == 1
        sample = child.metrics_registry.get_sample_value(
            "coves_hosted_by_verdicts_total", {"outcome": "rejected"}
        )
        assert sample == 1.0


async def test_verdict_for_an_old_host_claim_is_not_applied(db: Database) -> None:
    with trio.fail_after(20):
        await add_community(db, GOOD, "good", "did:web:other.com")
        _net, child = make_child(db, HostedByQueue())
        await child.process(GOOD, "did:web:remote.com")  # community moved meanwhile
        assert (await state(db, GOOD))[0] == "unverified"


async def test_retry_leaves_the_community_unverified(db: Database) -> None:
    with trio.fail_after(20):
        await add_community(db, GOOD, "good", "did:web:remote.com")
        net, child = make_child(db, HostedByQueue())
        net.addresses["remote.com"] = ["10.0.0.1"]  # fetch refused → retry later
        assert (await child.process(GOOD, "did:web:remote.com")).outcome == "retry"
        assert (await state(db, GOOD))[0] == "unverified"


async def test_sweep_queues_only_foreign_unverified_communities(db: Database) -> None:
    with trio.fail_after(20):
        await add_community(db, GOOD, "good", "did:web:remote.com")
        await add_community(db, BAD, "bad", "did:web:remote.com")
        await add_community(db, LOCAL, "local", INSTANCE)
        queue = HostedByQueue(capacity=10)
        _net, child = make_child(db, queue, sweep_batch=1)  # forces keyset paging
        assert await child.sweep_once() == 2
        queued = {queue.receive.receive_nowait()[0], queue.receive.receive_nowait()[0]}
        assert queued == {GOOD, BAD}


async def test_running_child_settles_offers_and_sweeps(db: Database) -> None:
    with trio.fail_after(20):
        await add_community(db, GOOD, "good", "did:web:remote.com")
        queue = HostedByQueue(capacity=1)
        _net, child = make_child(db, queue, sweep_interval=0.05, workers=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(child.run)
            queue.offer(GOOD, "did:web:remote.com")
            await add_community(db, BAD, "bad", "did:web:remote.com")  # found by the sweep
            while (await state(db, GOOD))[0] == "unverified" or (await state(db, BAD))[
                0
            ] == "unverified":
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        assert (await state(db, GOOD))[0] == "verified"
        assert (await state(db, BAD))[0] == "rejected"
        assert child.details()["verified"] >= 1
