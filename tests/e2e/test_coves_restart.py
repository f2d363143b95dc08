"""The real ``coves serve`` reading the real PDS's firehose is restarted (SIGTERM, then
kill -9) while a client keeps writing to the PDS: nothing is lost or doubled.

Writes go straight to the PDS (tests/e2e/helpers.py); Coves sees them only through
its firehose child (FIREHOSE_URL, signatures verified against the real PLC). The
index is checked record by record and counter by counter against what was written.
"""

from __future__ import annotations

from pathlib import Path

import trio

from coves.db import Database
from tests.e2e.coves_process import CovesProcess
from tests.e2e.helpers import (
    COMMENT,
    INSTANCE_DID,
    POST,
    PROFILE,
    VOTE,
    comment_record,
    community_profile,
    delete,
    eventually,
    post_record,
    put,
    ref,
    vote_record,
)
from tests.support.pds import TestPds

WRITES = 40


async def test_restarts_while_writes_arrive_lose_and_double_nothing(
    pds: TestPds, db: Database, server_dir: Path
) -> None:
    coves = CovesProcess(
        server_dir,
        DATABASE_URL=db.conninfo,
        FIREHOSE_URL=f"ws://127.0.0.1:{pds.port}",
        FIREHOSE_VERIFY="true",
        PLC_DIRECTORY_URL=pds.plc_url,
        ALLOW_PRIVATE_NETWORK_FETCH="true",
        INSTANCE_DID=INSTANCE_DID,
        SKIP_DID_WEB_VERIFICATION="true",
        JETSTREAM_BATCH_MS="20",
        LOG_LEVEL="info",
    )
    expected_votes: dict[str, int] = {}  # comment URI -> its upvotes
    try:
        with trio.fail_after(240):
            community = await pds.create_account()
            alice = await pds.create_account()
            bob = await pds.create_account()
            await put(pds, community, PROFILE, "self", community_profile(community, alice.did))
            post = await put(
                pds, community, POST, "3kpost0000001", post_record(community.did, alice.did, "R")
            )
            root = ref(post["uri"], post["cid"])
            await coves.start()

            async def writer() -> None:
                for i in range(WRITES):
                    comment = await put(
                        pds, bob, COMMENT, f"3kcomm{i:07d}", comment_record(root, root, f"c{i}")
                    )
                    await put(
                        pds,
                        alice,
                        VOTE,
                        f"3kvote{i:07d}",
                        vote_record(ref(comment["uri"], comment["cid"]), "up"),
                    )
                    expected_votes[comment["uri"]] = 1
                    if i % 7 == 6:
                        await delete(pds, alice, VOTE, f"3kvote{i:07d}")
                        expected_votes[comment["uri"]] = 0
                    await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                await trio.sleep(2.0)
                assert await coves.terminate() == 0  # a clean stop drains and exits 0
                await coves.start()
                await trio.sleep(2.0)
                assert await coves.kill() == -9
                await coves.start()

            async def caught_up() -> bool:
                got = await db.fetchrow(
                    "SELECT comment_count FROM posts WHERE uri = %s", (post["uri"],)
                )
                votes = await db.fetchval("SELECT count(*) FROM votes WHERE deleted_at IS NULL")
                return got == {"comment_count": WRITES} and votes == sum(expected_votes.values())

            await eventually(caught_up, timeout=60)
            await trio.sleep(1.0)  # anything doubled would land now
            rows = await db.fetch(
                "SELECT uri, upvote_count, downvote_count FROM comments WHERE root_uri = %s",
                (post["uri"],),
            )
            assert {r["uri"]: r["upvote_count"] for r in rows} == expected_votes
            assert all(r["downvote_count"] == 0 for r in rows)
            live = await db.fetch(
                "SELECT subject_uri, count(*) AS n FROM votes WHERE deleted_at IS NULL"
                " GROUP BY subject_uri HAVING count(*) > 1"
            )
            assert live == []
            assert await db.fetchval("SELECT count(*) FROM dead_letters") == 0
            assert coves.starts == 3
    finally:
        coves.stop_quietly()
        if coves.log() and "Traceback" in coves.log():
            print(coves.log()[-4000:])
