"""EXPLAIN (ANALYZE, BUFFERS) every read-path query shape on the bench database.

Runs each feed shape (community, discover, timeline, author x hot / top /
controversial / new, first page and keyset page; author feeds of one community
and with media only), post hydration, the viewer's relations, community
list/search, post search (relevance/new/top, one community, a rare and a
common word), an actor's comments, profile stats, blocked users and
communities, a comment by record key, and fails (exit 1) when any plan
sequentially scans a big table. Build the database first with
``bench/gen_readdb.py``.

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
from coves.db.queries import actors as actor_sql
from coves.db.queries import comments as comment_sql
from coves.db.queries import communities as community_sql
from coves.db.queries import feeds as feed_sql
from coves.db.queries import posts as post_sql
from coves.db.queries import relations as relation_sql
from coves.db.queries import search as search_sql
from coves.db.queries.feeds import FeedScope
from coves.search import trigrams

BIG = {
    "posts",
    "votes",
    "comments",
    "users",
    "subscriptions",
    "blocks",
    "user_blocks",
    "post_search",
}
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
    author = conn.execute(
        "SELECT author_did FROM posts GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    subscribed = tuple(
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT community_did FROM subscriptions WHERE user_did = %s", (VIEWER,)
        )
    )
    yield "timeline: subscribed communities", feed_sql.TIMELINE_COMMUNITIES_SQL, {"viewer": VIEWER}
    scopes = {
        "community(busiest)": FeedScope("community", busiest),
        "community(quiet)": FeedScope("community", quiet),
        "discover": FeedScope("discover"),
        f"timeline({len(subscribed)} subs)": FeedScope("timeline", subscribed),
        "author": FeedScope("author", author),
        "author in one community": FeedScope("author", author, community=busiest),
        "author media only": FeedScope("author", author, media=True),
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
    hydrated = conn.execute(post_sql._HYDRATE, (page,)).fetchall()
    yield (
        "relations of a page (blocks, membership, votes)",
        relation_sql.RELATIONS_SQL,
        {
            "viewer": VIEWER,
            "communities": sorted({row[3] for row in hydrated}),
            "actors": sorted({row[4] for row in hydrated}),
            "subjects": page,
        },
    )
    day_ago_search = datetime.now(UTC) - timedelta(days=1)
    for word in ("rust", "text"):  # a topic, and a word in every post
        for sort in ("relevance", "new", "top"):
            yield (
                f"searchPosts '{word}' {sort}",
                search_sql.search_query(sort, community=False, since=False),
                {"q": word, "limit": LIMIT, "community": None, "since": None},
            )
        yield (
            f"searchPosts '{word}' top(day) in busiest",
            search_sql.search_query("top", community=True, since=True),
            {"q": word, "limit": LIMIT, "community": busiest, "since": day_ago_search},
        )
    commenter = conn.execute(
        "SELECT commenter_did FROM comments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]  # type: ignore[index]
    first = {"actor": commenter, "limit": 51, "at": None, "uri": None, "community": None}
    yield "actor.getComments p1", actor_sql.comments_sql(after=False, community=False), first
    rows = conn.execute(
        actor_sql.comments_sql(after=False, community=False).replace("%(limit)s", "200"), first
    ).fetchall()
    if rows:
        keyset = {**first, "at": rows[-1][1], "uri": rows[-1][0]}
        yield (
            "actor.getComments p(after 200)",
            actor_sql.comments_sql(after=True, community=False),
            keyset,
        )
        yield (
            "actor.getComments in busiest",
            actor_sql.comments_sql(after=False, community=True),
            {**first, "community": busiest},
        )
        yield (
            "comments of a page by URI",
            comment_sql.LIVE_BY_URIS_SQL,
            {"uris": [row[0] for row in rows[:50]]},
        )
    thread = conn.execute(
        "SELECT root_uri, rkey FROM comments ORDER BY root_uri LIMIT 1"
    ).fetchone()
    assert thread is not None
    yield (
        "getComments parentRkey lookup",
        comment_sql.BY_RKEY_SQL,
        {
            "post": thread[0],
            "rkey": thread[1],
        },
    )
    yield "profile stats (busiest author)", actor_sql.STATS_SQL, {"did": author}
    blocker = conn.execute("SELECT blocker_did FROM user_blocks LIMIT 1").fetchone()
    if blocker is not None:
        yield (
            "actor.getBlockedUsers",
            actor_sql.BLOCKED_USERS_SQL,
            {
                "viewer": blocker[0],
                "limit": 50,
                "offset": 0,
            },
        )
    user = conn.execute("SELECT user_did FROM blocks LIMIT 1").fetchone()
    if user is not None:
        yield (
            "community.getBlockedCommunities",
            community_sql.BLOCKED_SQL,
            {
                "viewer": user[0],
                "limit": 51,
                "at": None,
                "uri": None,
            },
        )
    for sort, (_, order, _) in community_sql._SORTS.items():
        yield (
            f"community.list {sort}",
            f"SELECT {community_sql.COLUMNS} {community_sql._FROM}"
            f" WHERE {community_sql.VISIBLE} AND c.visibility = 'public'"
            f" ORDER BY {order} LIMIT 51",
            None,
        )
    for q in ("gaming1", "rust"):
        grams = trigrams(q)
        yield (
            f"community.search '{q}'",
            community_sql.SEARCH_SQL.replace("{listing}", "c.visibility = %(visibility)s"),
            {
                "q": grams,
                "qn": len(grams),
                "term": q,
                "words": q,
                "limit": 51,
                "offset": 0,
                "viewer": None,
                "visibility": "public",
                "min": 0.1,
            },
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
