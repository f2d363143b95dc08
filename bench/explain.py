"""EXPLAIN (ANALYZE, BUFFERS) every read-path query shape on the bench database.

Runs each feed shape (community, discover, timeline, author x hot / top /
controversial / new, first page and keyset page), post hydration, viewer
state, community list/search, and fails (exit 1) when any plan sequentially
scans a big table. Build the database first with ``bench/gen_readdb.py``.

    .venv/bin/python -m bench.explain --data-dir /tmp/coves-readdb
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.gen_readdb import DEFAULT_DIR, start
from coves.db.embedded import stop_blocking
from coves.db.queries import communities as community_sql
from coves.db.queries import feeds as feed_sql
from coves.db.queries import posts as post_sql
from coves.db.queries.feeds import FeedScope
from coves.search import trigrams

BIG = {"posts", "votes", "comments", "users", "subscriptions", "blocks"}
VIEWER = "did:plc:bu0"
LIMIT = 1000  # FEED_SNAPSHOT_SIZE: what a ranked first page computes


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def explain(conn: psycopg.Connection[Any], sql: str, params: Any) -> dict[str, Any]:
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params).fetchone()
    assert row is not None
    return row[0][0]  # type: ignore[no-any-return]


def shapes(conn: psycopg.Connection[Any]) -> Iterator[tuple[str, str, Any]]:
    busiest = conn.execute(
        "SELECT did FROM community_stats ORDER BY post_count DESC LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    quiet = conn.execute(
        "SELECT did FROM community_stats WHERE post_count > 0 ORDER BY post_count LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    author = conn.execute("SELECT author_did FROM posts LIMIT 1").fetchone()[0]  # type: ignore[index]
    subscribed = tuple(
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT community_did FROM subscriptions WHERE user_did = %s", (VIEWER,)
        )
    )
    yield (
        "timeline: subscribed communities",
        """
        SELECT DISTINCT s.community_did AS did FROM subscriptions s
        JOIN communities c ON c.did = s.community_did
        LEFT JOIN users cu ON cu.did = s.community_did
        WHERE s.user_did = %(viewer)s AND s.deleted_at IS NULL
          AND c.deleted_at IS NULL AND c.verification = 'verified' AND cu.active IS NOT FALSE
          AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_did = %(viewer)s
                          AND b.community_did = s.community_did AND b.deleted_at IS NULL)
        """,
        {"viewer": VIEWER},
    )
    scopes = {
        "community(busiest)": FeedScope("community", busiest),
        "community(quiet)": FeedScope("community", quiet),
        "discover": FeedScope("discover"),
        f"timeline({len(subscribed)} subs)": FeedScope("timeline", subscribed),
        "author": FeedScope("author", author),
    }
    day_ago = datetime.now(UTC) - timedelta(days=1)
    for label, scope in scopes.items():
        for sort in ("hot", "controversial"):
            yield (f"{label} {sort}", feed_sql.ranked_query(scope, sort, since=False),
                   feed_sql.params_for(scope, LIMIT))  # fmt: skip
        yield (f"{label} top(day)", feed_sql.ranked_query(scope, "top", since=True),
               feed_sql.params_for(scope, LIMIT, since=day_ago))  # fmt: skip
        yield (f"{label} top(all)", feed_sql.ranked_query(scope, "top", since=False),
               feed_sql.params_for(scope, LIMIT))  # fmt: skip
        first = feed_sql.params_for(scope, 16)
        yield f"{label} new p1", feed_sql.new_query(scope, after=False), first
        rows = conn.execute(feed_sql.new_query(scope, after=False).replace("%(limit)s", "200"),
                            first).fetchall()  # fmt: skip
        if rows:
            after = (rows[-1][1], rows[-1][0])
            yield (f"{label} new p(after 200)", feed_sql.new_query(scope, after=True),
                   feed_sql.params_for(scope, 16, after=after))  # fmt: skip
    page = [
        r[0]
        for r in conn.execute(
            feed_sql.ranked_query(scopes["discover"], "hot", since=False),
            feed_sql.params_for(scopes["discover"], 50),
        )
    ]
    yield "hydrate 50 posts", post_sql._HYDRATE, (page,)
    yield "viewer state (votes+blocks)", post_sql._VIEWER_STATE, {"viewer": VIEWER, "uris": page}
    for sort, (_, order, _) in community_sql._SORTS.items():
        yield (
            f"community.list {sort}",
            f"SELECT {community_sql.COLUMNS} {community_sql._FROM}"
            f" WHERE {community_sql.VISIBLE} AND c.visibility = 'public'"
            f" ORDER BY {order} LIMIT 51",
            None,
        )
    yield (
        "community.search 'gaming1'",
        "SELECT c.did FROM communities c WHERE c.search_trigrams && %s::text[]",
        (trigrams("gaming1"),),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--verbose", action="store_true", help="print every plan")
    args = parser.parse_args()
    server, proc = start(args.data_dir)
    failures: list[str] = []
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            counts = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("posts", "communities", "votes", "comments", "users", "subscriptions")
            }
            print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
            print(f"{'shape':<44} {'ms':>8} {'rows':>6} {'bufs':>7}  scans")
            for label, sql, params in shapes(conn):
                result = explain(conn, sql, params)
                plan = result["Plan"]
                scans = []
                for node in nodes(plan):
                    rel = node.get("Relation Name")
                    kind = node["Node Type"]
                    if rel and "Scan" in kind:
                        scans.append(f"{kind.replace(' Scan', '')}:{node.get('Index Name', rel)}")
                    if kind == "Seq Scan" and rel in BIG:
                        failures.append(f"{label}: Seq Scan on {rel}")
                bufs = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
                print(f"{label:<44} {result['Execution Time']:>8.2f} {plan['Actual Rows']:>6}"
                      f" {bufs:>7}  {', '.join(dict.fromkeys(scans))}")  # fmt: skip
                if args.verbose:
                    print(result)
    finally:
        stop_blocking(proc)
    if failures:
        print("FAIL: sequential scans on big tables:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("OK: every shape is index-served (no Seq Scan on posts/votes/comments/users/subs)")


if __name__ == "__main__":
    main()
