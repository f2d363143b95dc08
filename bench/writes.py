"""Writes through Coves against the reference PDS, next to the same writes made directly.

Coves' own cost of a write (authenticate the session, validate, build the
record, call the PDS with DPoP, index the result at once) is its latency
minus the PDS call's. Measured in one run, on the same PDS under the same
load: signed-in users (real accounts on Bluesky's reference PDS, signed in to
Coves through the PDS's own OAuth server, as the tests do) vote and comment
at a steady rate through Coves, and the same records are written straight to
the PDS with ``com.atproto.repo.createRecord`` at the same rate, interleaved.
Reads run meanwhile (closed loop: timelines, post.get, comment threads of the
post being written to). The difference of the two latency distributions is
Coves' added latency (floor, issue 19: p95 <= 10 ms).

Coves runs in this process (the application as the tests build it, served to
in-process clients: no HTTP parsing), with its PostgreSQL durable; the PDS
and PLC are the project's pinned reference servers (``scripts/install-test-pds``),
started on ``--pds-cpus`` so they do not take Coves' core. Posts are not
included: creating one needs a community account on the PDS, which the
community-hosting workflow sets up and this bench does not.

    .venv/bin/python -m bench.writes --users 5 --rate 10 --seconds 30 --readers 4
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import trio
from psycopg.rows import dict_row

from coves import clock
from coves.atproto.syntax import format_datetime
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.migrate import apply_migrations, load_migrations
from tests.oauth.live import Live, open_live
from tests.oauth.writes_support import SignedIn, seed_post, sign_in
from tests.support.pds import start_test_pds

VOTE = "social.coves.feed.vote"
FAILURES_SHOWN: dict[str, bool] = {}
COMMENT = "social.coves.community.comment"


@dataclass
class Latencies:
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, label: str, ms: float, ok: bool) -> None:
        if ok:
            self.samples[label].append(ms)
        else:
            self.failures[label] += 1


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def coves_write(user: SignedIn, op: str, subject: dict[str, str]) -> bool:
    if op == VOTE:
        body: dict[str, Any] = {"subject": subject, "direction": random.choice(["up", "down"])}
        response = await user.call("social.coves.feed.vote.create", body)
    else:
        body = {"reply": {"root": subject, "parent": subject}, "content": "bench comment"}
        response = await user.call("social.coves.community.comment.create", body)
    if response.status_code != 200 and not FAILURES_SHOWN.get(op):
        FAILURES_SHOWN[op] = True
        print(f"  first failure through Coves ({op}): {response.status_code} "
              f"{(await response.get_data())[:300]!r}")  # fmt: skip
    return bool(response.status_code == 200)


async def direct_write(live: Live, user: SignedIn, op: str, subject: dict[str, str]) -> bool:
    now = format_datetime(clock.utcnow())
    if op == VOTE:
        record: dict[str, Any] = {
            "$type": VOTE,
            "subject": subject,
            "direction": random.choice(["up", "down"]),
            "createdAt": now,
        }
    else:
        record = {
            "$type": COMMENT,
            "reply": {"root": subject, "parent": subject},
            "content": "bench comment",
            "createdAt": now,
        }
    response = await live.pds.xrpc(
        "POST",
        "com.atproto.repo.createRecord",
        token=user.account.access_jwt,
        json={"repo": user.did, "collection": op, "record": record},
    )
    return response.status_code == 200


async def run(args: argparse.Namespace, root: Path) -> None:
    pds = await trio.to_thread.run_sync(start_test_pds, root / "pds")
    if args.pds_cpus and hasattr(os, "sched_setaffinity"):
        for pid in pds.pids():
            os.sched_setaffinity(pid, {int(c) for c in args.pds_cpus.split(",")})
    server = EmbeddedPostgres(root / "db", durable=True)
    try:
        # From this thread, not a worker thread: the server's parent-death signal fires
        # when the spawning thread ends, and Trio's idle worker threads end (it was
        # shut down 30 s into a run that way).
        proc = server.start_blocking()
    except BaseException:
        await trio.to_thread.run_sync(pds.stop)
        raise
    try:

        def migrate() -> None:
            with psycopg.connect(server.conninfo(), autocommit=True, row_factory=dict_row) as c:
                apply_migrations(c, load_migrations())  # type: ignore[arg-type]

        await trio.to_thread.run_sync(migrate)
        # Limits lifted: the bench is one client writing for a handful of accounts.
        unlimited = {
            name: 10**9
            for name in (
                "rate_limit_general",
                "rate_limit_comments",
                "rate_limit_search",
                "rate_limit_user_writes",
            )
        }
        async with (
            Database(server.conninfo(), pool_size=10) as db,
            open_live(pds, db, **unlimited) as live,
        ):
            users = [await sign_in(live) for _ in range(args.users)]
            posts = [await seed_post(live) for _ in range(args.posts)]
            subjects = [{"uri": uri, "cid": post_cid} for _, uri, post_cid in posts]
            print(f"{len(users)} users signed in through the PDS's OAuth server; "
                  f"{len(subjects)} posts seeded")  # fmt: skip
            results = Latencies()
            reads = Latencies()
            stop = trio.Event()

            async def reader(n: int) -> None:
                rnd = random.Random(n)
                while not stop.is_set():
                    user = rnd.choice(users)
                    subject = rnd.choice(subjects)["uri"]
                    nsid, params = rnd.choice(
                        [
                            ("social.coves.feed.getTimeline", {}),
                            ("social.coves.community.post.get", {"uris": subject}),
                            ("social.coves.community.comment.getComments", {"post": subject}),
                        ]
                    )
                    started = time.perf_counter()
                    response = await user.query(nsid, **params)
                    reads.add(nsid, (time.perf_counter() - started) * 1000,
                              response.status_code == 200)  # fmt: skip

            async def write(kind: str, n: int) -> None:
                user = users[n % len(users)]
                op = VOTE if random.random() < args.vote_share else COMMENT
                subject = random.choice(subjects)
                started = time.perf_counter()
                if kind == "coves":
                    ok = await coves_write(user, op, subject)
                else:
                    ok = await direct_write(live, user, op, subject)
                label = f"{kind} {'vote' if op == VOTE else 'comment'}"
                results.add(label, (time.perf_counter() - started) * 1000, ok)

            async with trio.open_nursery() as nursery:
                for n in range(args.readers):
                    nursery.start_soon(reader, n)
                interval = 1.0 / args.rate
                deadline = trio.current_time() + args.seconds
                async with trio.open_nursery() as writes:
                    for n in itertools.count():
                        if trio.current_time() >= deadline:
                            break
                        # Interleaved, each at the full rate: Coves, then the PDS directly.
                        writes.start_soon(write, "coves", n)
                        await trio.sleep(interval / 2)
                        writes.start_soon(write, "direct", n)
                        await trio.sleep(interval / 2)
                stop.set()
            report(args, results, reads)
    finally:
        await trio.to_thread.run_sync(stop_blocking, proc)
        await trio.to_thread.run_sync(pds.stop)


def report(args: argparse.Namespace, results: Latencies, reads: Latencies) -> None:
    print(f"\nwrites at {args.rate}/s through Coves and {args.rate}/s straight to the PDS, "
          f"{args.seconds:.0f} s, {args.readers} readers (nproc {os.cpu_count()})")  # fmt: skip
    for label in sorted(set(results.samples) | set(results.failures)):
        values = results.samples.get(label, [])
        print(f"  {label:<16} n={len(values):>5} failed={results.failures.get(label, 0):>3}  "
              f"p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  "
              f"p99 {pct(values, 99):7.1f} ms")  # fmt: skip
    for op in ("vote", "comment"):
        coves = results.samples.get(f"coves {op}", [])
        direct = results.samples.get(f"direct {op}", [])
        if coves and direct:
            print(f"  Coves' added latency, {op}: p50 {pct(coves, 50) - pct(direct, 50):+.1f} ms, "
                  f"p95 {pct(coves, 95) - pct(direct, 95):+.1f} ms "
                  f"(floor: p95 <= 10 ms)")  # fmt: skip
    total = sum(len(v) for v in reads.samples.values())
    print(f"  reads meanwhile: {total / args.seconds:.0f}/s, "
          f"failed {sum(reads.failures.values())}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--posts", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="writes/s of each kind")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--vote-share", type=float, default=0.7)
    parser.add_argument("--cpus", default="0", help="cores for Coves (this process)")
    parser.add_argument("--pds-cpus", default="1" if (os.cpu_count() or 1) > 1 else "")
    args = parser.parse_args()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    root = Path(tempfile.mkdtemp(prefix="coves-bench-writes-"))
    try:
        trio.run(run, args, root)
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
