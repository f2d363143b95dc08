"""getComments under concurrent load on a generated 2 000-comment thread.

Runs the real dispatcher (rate limits off, everything else as served) in
process against PostgreSQL, with N concurrent clients each issuing requests
back to back. The baseline, measured in the same run with the same clients
and pool, is ``_health`` (one trivial query per request), so figures are
reported as a ratio to it as well as in milliseconds. It also prints the
number of SQL round trips per request and EXPLAIN ANALYZE of the reply-tree
query.

    .venv/bin/python bench/comments_thread.py                # embedded PostgreSQL
    .venv/bin/python bench/comments_thread.py --dsn ...      # an existing empty database
    .venv/bin/python bench/comments_thread.py --clients 100 --seconds 20

Numbers are only comparable within one run: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import trio

from coves.auth.base import AuthInput, Viewer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_thread import generate_thread
from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.migrate import apply_migrations, load_migrations
from coves.db.queries import comments as comment_sql
from coves.logs import configure_logging
from coves.metrics import Metrics
from coves.ttlcache import TTLCache
from coves.xrpc.app import create_app

NSID = "social.coves.community.comment.getComments"


class CountingDatabase(Database):
    """Counts round trips (every query helper funnels through ``run``)."""

    calls = 0

    async def run(self, fn: Callable[[Any], Any], *, transaction: bool = True) -> Any:
        CountingDatabase.calls += 1
        return await super().run(fn, transaction=transaction)


class BearerDid:
    """Bench authenticator: ``Authorization: Bearer <did>`` (viewer-state runs)."""

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization", "")
        return Viewer(did=header[7:], method="unverified") if header else None


async def load(
    client: Any,
    path: str,
    query: list[tuple[str, str]],
    clients: int,
    seconds: float,
    headers: dict[str, str],
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get(path, query_string=query, headers=headers)
            await response.get_data()
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                errors += 1

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(worker)
    return latencies, errors


def summary(name: str, latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p95 = ordered[int(len(ordered) * 0.95)] * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    rps = len(ordered) / seconds
    print(
        f"{name:<30} n={len(ordered):>6}  {rps:>7.1f} req/s  p50 {p50:7.1f} ms  "
        f"p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  mean {statistics.fmean(ordered) * 1000:6.1f} ms"
        f"  errors {errors}"
    )
    return {"rps": rps, "p50": p50, "p95": p95}


async def bench(dsn: str, args: argparse.Namespace) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        info = generate_thread(conn, comments=args.comments)
        print(
            f"thread: {info.comments} comments, {info.top_level} top-level, "
            f"max depth {info.max_depth}"
        )
        print("\nEXPLAIN ANALYZE of the reply tree (50 top-level parents, 5+1 per parent):")
        parents = [
            r[0]
            for r in conn.execute(
                "SELECT uri FROM comments WHERE parent_uri = %s ORDER BY hot_rank DESC LIMIT 50",
                (info.post_uri,),
            ).fetchall()
        ]
        plan = conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) " + comment_sql.TREE_SQL["hot"],
            {"parents": parents, "limit": 6, "shown": 5, "depth": 10, "cap": 1001},
        ).fetchall()
        for row in plan:
            print("   ", row[0])

    settings = test_settings(rate_limit_general=10**9, rate_limit_comments=10**9)
    db = CountingDatabase(dsn, pool_size=args.pool)
    await db.open()
    try:
        ctx = AppContext(settings=settings, db=db, metrics=Metrics(), authenticator=BearerDid())
        client = create_app(ctx).test_client()
        cold_ctx = AppContext(settings=settings, db=db, metrics=Metrics())
        cold_ctx.read.comment_threads = TTLCache(0)
        cold_client = create_app(cold_ctx).test_client()
        base = [("post", info.post_uri)]

        CountingDatabase.calls = 0
        response = await client.get(f"/xrpc/{NSID}", query_string=base)
        body = await response.get_json()
        assert response.status_code == 200, body
        print(f"\nround trips per request (hot, depth 10, first page): {CountingDatabase.calls}")
        CountingDatabase.calls = 0
        await client.get(
            f"/xrpc/{NSID}",
            query_string=[*base, ("cursor", body["cursor"])] if "cursor" in body else base,
        )
        print(f"round trips per request (hot, next page):          {CountingDatabase.calls}")

        def count(nodes: list[dict[str, Any]]) -> int:
            return sum(1 + count(n.get("replies", [])) for n in nodes)

        print(f"comments in first page: {count(body['comments'])}, bytes {len(str(body))}")

        print(f"\n{args.clients} concurrent clients, {args.seconds:.0f} s each, pool {args.pool}:")
        results = {}
        as_viewer = {"Authorization": f"Bearer {info.viewer_did}"}
        top3 = [*base, ("sort", "top"), ("depth", "3")]
        runs: list[tuple[str, Any, str, list[tuple[str, str]], dict[str, str]]] = [
            ("baseline _health", client, "/xrpc/_health", [], {}),
            ("hot, anonymous", client, f"/xrpc/{NSID}", base, {}),
            ("hot, with viewer state", client, f"/xrpc/{NSID}", base, as_viewer),
            ("new, anonymous", client, f"/xrpc/{NSID}", [*base, ("sort", "new")], {}),
            ("top depth=3, viewer", client, f"/xrpc/{NSID}", top3, as_viewer),
            ("hot, cache off (cold build)", cold_client, f"/xrpc/{NSID}", base, {}),
        ]
        for name, which, path, query, headers in runs:
            latencies, errors = await load(which, path, query, args.clients, args.seconds, headers)
            results[name] = summary(name, latencies, errors, args.seconds)
        baseline = results["baseline _health"]
        print("\nratio to baseline (p95, throughput):")
        for name, figures in results.items():
            print(
                f"  {name:<30} p95 x{figures['p95'] / baseline['p95']:.2f}   "
                f"throughput x{figures['rps'] / baseline['rps']:.2f}"
            )
        print(f"\ncores: {os.cpu_count()} (shared machine: compare ratios, not absolutes)")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="getComments load benchmark")
    parser.add_argument("--dsn", help="an existing, empty PostgreSQL database (migrated here)")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval for this run (GIL handoff experiment; default untouched)",
    )
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    configure_logging("warning", "console")

    root: Path | None = None
    proc = None
    dsn = args.dsn
    if dsn is None:
        root = Path(tempfile.mkdtemp(prefix="coves-bench-comments-"))
        server = EmbeddedPostgres(root, database="bench", durable=False)
        proc = server.start_blocking()
        dsn = server.conninfo("bench")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
            apply_migrations(conn, load_migrations())  # type: ignore[arg-type]
        trio.run(bench, dsn, args)
    finally:
        if proc is not None:
            stop_blocking(proc)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
