"""Build a large read-path database for ``bench/explain.py`` and ``bench/read_api.py``.

Default scale (``--scale 1``): 1 000 000 posts, 10 000 communities, 5 000 000
votes, 2 000 000 comments, 100 000 users and about 500 000 subscriptions.
Rows are generated inside PostgreSQL (``INSERT ... SELECT generate_series``:
no client round trips, cheaper than COPY from Python) into an embedded
PostgreSQL under ``--data-dir``, with the big tables' secondary indexes
dropped during the load and rebuilt afterwards, then ``VACUUM ANALYZE``.
Counters (scores, ranks, comment/subscriber/post counts) are recomputed from
the generated rows, so the database looks like the indexer's output.

Everything is deterministic in the row number (``hashint4``), so URIs can be
computed without lookups: post ``i`` lives in community ``bench_post_community(i)``.
Community 0..49 are the bench viewer's (user 0) subscriptions; post 0 carries
a 2 000-comment thread (for getComments).

    .venv/bin/python -m bench.gen_readdb --scale 0.01 --data-dir /tmp/coves-readdb-small
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg

from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.migrate import apply_migrations, load_migrations
from coves.search import trigrams

DEFAULT_DIR = Path("/tmp/coves-readdb")
META_FILE = "bench-meta.json"
BIG_TABLES = (
    "posts",
    "votes",
    "comments",
    "subscriptions",
    "communities",
    "users",
    "blocks",
    "user_blocks",
    "post_search",
)
VIEWER_SUBSCRIPTIONS = 50
# The triggers that keep post_search (migrations 0020 and 0110); the generator fills it at once.
SEARCH_TRIGGERS = ("posts_search_inserted", "posts_search_row")
THREAD_COMMENTS = 2000
LOAD_SETTINGS = {
    "maintenance_work_mem": "512MB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}


def start(data_dir: Path) -> tuple[EmbeddedPostgres, Any]:
    server = EmbeddedPostgres(data_dir, durable=False, extra_settings=LOAD_SETTINGS)
    return server, server.start_blocking()


def step(
    conn: psycopg.Connection[Any], label: str, sql: str, params: dict[str, int] | None = None
) -> None:
    """Run one generation statement; ``%(name)s`` are our own integers, inlined so
    the SQL can use ``%`` freely."""
    for key, value in (params or {}).items():
        sql = sql.replace(f"%({key})s", str(int(value)))
    started = time.perf_counter()
    cur = conn.execute(sql.encode())
    print(f"  {label:<44} {cur.rowcount:>10} rows {time.perf_counter() - started:7.1f} s")


def generate(conn: psycopg.Connection[Any], n: dict[str, int]) -> None:
    p = n
    step(
        conn,
        "helper functions",
        f"""
        CREATE OR REPLACE FUNCTION bench_post_community(i int) RETURNS int
        LANGUAGE sql IMMUTABLE AS $$
            -- skewed: low-numbered communities are much busier
            SELECT least({p["communities"] - 1}, floor({p["communities"]}
                * power((hashint4(i) & 2147483647) / 2147483648.0, 2)))::int
        $$;
        CREATE OR REPLACE FUNCTION bench_community_name(i int) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT (ARRAY['gaming', 'music', 'rust', 'python', 'cooking', 'hiking', 'movies',
                          'books', 'science', 'space', 'cycling', 'chess', 'photos', 'news',
                          'design', 'linux', 'coffee', 'garden', 'travel', 'history'])[i % 20 + 1]
                   || i
        $$;
        CREATE OR REPLACE FUNCTION bench_post_uri(i int) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT 'at://did:plc:bc' || bench_post_community(i)
                   || '/social.coves.community.post/p' || i
        $$;
        """,
    )
    step(
        conn,
        "users",
        """
        INSERT INTO users (did, handle, display_name, pds_url, active)
        SELECT 'did:plc:bu' || g, 'u' || g || '.bench.test', 'User ' || g,
               'https://pds.bench.test', true
        FROM generate_series(0, %(users)s - 1) g
        """,
        p,
    )
    step(
        conn,
        "community accounts",
        """
        INSERT INTO users (did, handle, pds_url, active)
        SELECT 'did:plc:bc' || g, bench_community_name(g) || '.community.localhost', NULL, true
        FROM generate_series(0, %(communities)s - 1) g
        """,
        p,
    )
    step(
        conn,
        "communities",
        """
        INSERT INTO communities (did, name, display_name, description, created_by, hosted_by,
            visibility, verification, verified_at, record, record_cid, created_at,
            search_trigrams)
        SELECT 'did:plc:bc' || g, bench_community_name(g), 'Community ' || g,
               'all about ' || bench_community_name(g / 7) || ' and more',
               'did:plc:bu' || (g % %(users)s), 'did:web:localhost',
               CASE WHEN g >= 100 AND g % 20 = 7 THEN 'private'
                    WHEN g >= 100 AND g % 20 = 11 THEN 'unlisted' ELSE 'public' END,
               'verified', now(), jsonb_build_object('name', 'c' || g), 'bafyreibench',
               now() - make_interval(days => g % 400), '{}'
        FROM generate_series(0, %(communities)s - 1) g
        """,
        p,
    )
    started = time.perf_counter()
    rows = conn.execute("SELECT did, name, description FROM communities").fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE communities SET search_trigrams = %s WHERE did = %s",
            [(trigrams(f"{name} {description}"), did) for did, name, description in rows],
        )
    print(f"  {'community search trigrams':<44} {len(rows):>10} rows "
          f"{time.perf_counter() - started:7.1f} s")  # fmt: skip
    step(
        conn,
        "posts",
        """
        INSERT INTO posts (uri, rkey, cid, community_did, author_did, title, content, record,
            created_at, ranked_at, indexed_at)
        SELECT bench_post_uri(g), 'p' || g, 'bafyreibenchpost',
               'did:plc:bc' || bench_post_community(g),
               'did:plc:bu' || ((hashint4(g + 7) & 2147483647) % %(users)s),
               'Post number ' || g,
               'Some text for post ' || g || ' about '
               || regexp_replace(bench_community_name(g % 97), '[0-9]+$', ''),
               jsonb_build_object('$type', 'social.coves.community.post',
                                  'community', 'did:plc:bc' || bench_post_community(g),
                                  'title', 'Post number ' || g),
               t, t, t
        FROM generate_series(0, %(posts)s - 1) g,
             LATERAL (SELECT now() - make_interval(
                 secs => ((hashint4(g + 13) & 2147483647) % (60 * 86400))) AS t) ts
        """,
        p,
    )
    step(
        conn,
        "votes (one per voter and subject)",
        """
        INSERT INTO votes (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid, direction,
            created_at, indexed_at, effective)
        SELECT 'at://did:plc:bu' || (g % %(users)s) || '/social.coves.feed.vote/v' || g,
               'v' || g, 'bafyreibenchvote', '1', 'did:plc:bu' || (g % %(users)s),
               bench_post_uri((((hashint4(g % %(users)s) & 2147483647)::bigint
                                + (g / %(users)s)::bigint * 104729) % %(posts)s)::int),
               'bafyreibenchpost',
               CASE WHEN (hashint4(g + 3) & 1023) < 800 THEN 1 ELSE -1 END,
               now(), now(), true
        FROM generate_series(0, %(votes)s - 1) g
        """,
        p,
    )
    step(
        conn,
        "comments (threads of 4; post 0 has 2000)",
        """
        INSERT INTO comments (uri, rkey, cid, commenter_did, root_uri, root_cid, parent_uri,
            parent_cid, content, record, created_at, ranked_at, indexed_at)
        SELECT 'at://did:plc:bu' || (g % %(users)s) || '/social.coves.community.comment/k' || g,
               'k' || g, 'bafyreibenchcomment', 'did:plc:bu' || (g % %(users)s),
               root, 'bafyreibenchpost',
               CASE WHEN g % 4 = 0 THEN root
                    ELSE 'at://did:plc:bu' || ((g - 1) % %(users)s)
                         || '/social.coves.community.comment/k' || (g - 1) END,
               'bafyreibenchcomment', 'comment ' || g,
               jsonb_build_object('$type', 'social.coves.community.comment'),
               now() - make_interval(secs => g % 86400), now() - make_interval(secs => g % 86400),
               now()
        FROM generate_series(0, %(comments)s - 1) g,
             LATERAL (SELECT CASE WHEN g < %(thread)s THEN bench_post_uri(0)
                                  ELSE bench_post_uri(((hashint4(g / 4) & 2147483647)
                                                       % %(posts)s)::int) END AS root) r
        """,
        {**p, "thread": THREAD_COMMENTS},
    )
    step(
        conn,
        "subscriptions (viewer: 50; others: 5 each)",
        """
        INSERT INTO subscriptions (uri, user_did, rkey, community_did, record_cid, created_at)
        SELECT 'at://did:plc:bu' || u || '/social.coves.community.subscription/s' || k,
               'did:plc:bu' || u, 's' || k,
               'did:plc:bc' || CASE WHEN u = 0 THEN k
                                    ELSE (hashint4(u * 8 + k) & 2147483647) % %(communities)s END,
               'bafyreibenchsub', now()
        FROM generate_series(0, %(users)s - 1) u,
             LATERAL generate_series(0, CASE WHEN u = 0 THEN 49 ELSE 4 END) k
        """,
        p,
    )
    step(
        conn,
        "blocks (every 10th user blocks one community)",
        """
        INSERT INTO blocks (uri, user_did, rkey, community_did, record_cid, created_at)
        SELECT 'at://did:plc:bu' || u || '/social.coves.community.block/b0', 'did:plc:bu' || u,
               'b0', 'did:plc:bc' || ((hashint4(u) & 2147483647) % %(communities)s),
               'bafyreibenchblock', now()
        FROM generate_series(10, %(users)s - 1, 10) u
        """,
        p,
    )
    step(
        conn,
        "user blocks (every 10th user blocks one user)",
        """
        INSERT INTO user_blocks (uri, blocker_did, rkey, subject_did, record_cid, created_at)
        SELECT 'at://did:plc:bu' || u || '/social.coves.actor.block/ub0', 'did:plc:bu' || u,
               'ub0', 'did:plc:bu' || ((hashint4(u + 1) & 2147483647) % %(users)s),
               'bafyreibenchublock', now()
        FROM generate_series(10, %(users)s - 1, 10) u
        """,
        p,
    )
    step(
        conn,
        "post search documents",
        """
        INSERT INTO post_search (uri, document)
        SELECT uri, coves_post_document(title, content) FROM posts WHERE deleted_at IS NULL
        """,
    )
    step(
        conn,
        "post counters and ranks from votes/comments",
        """
        UPDATE posts p SET upvote_count = x.ups, downvote_count = x.downs,
               score = x.ups - x.downs,
               hot_rank = coves_hot_rank(x.ups - x.downs, p.ranked_at),
               controversy_rank = coves_controversy_rank(x.ups, x.downs),
               comment_count = x.comments
        FROM (SELECT coalesce(v.subject_uri, c.root_uri) AS uri, coalesce(v.ups, 0) AS ups,
                     coalesce(v.downs, 0) AS downs, coalesce(c.n, 0) AS comments
              FROM (SELECT subject_uri, count(*) FILTER (WHERE direction = 1)::int AS ups,
                           count(*) FILTER (WHERE direction = -1)::int AS downs
                    FROM votes GROUP BY subject_uri) v
              FULL JOIN (SELECT root_uri, count(*)::int AS n FROM comments
                         GROUP BY root_uri) c ON c.root_uri = v.subject_uri) x
        WHERE p.uri = x.uri
        """,
    )
    step(
        conn,
        "ranks of posts without votes",
        "UPDATE posts SET hot_rank = coves_hot_rank(0, ranked_at) WHERE hot_rank = 0",
    )
    step(
        conn,
        "community counters",
        """
        UPDATE community_stats c SET subscriber_count = coalesce(s.n, 0),
               post_count = coalesce(q.n, 0), last_post_at = q.last
        FROM community_stats c2
        LEFT JOIN (SELECT community_did, count(*)::int AS n FROM subscriptions
                   GROUP BY community_did) s ON s.community_did = c2.did
        LEFT JOIN (SELECT community_did, count(*)::int AS n, max(created_at) AS last
                   FROM posts GROUP BY community_did) q ON q.community_did = c2.did
        WHERE c.did = c2.did
        """,
    )


def write_meta(conn: psycopg.Connection[Any], data_dir: Path) -> None:
    """What the benchmarks need to address: the thread post, busiest communities."""
    thread = conn.execute("SELECT bench_post_uri(0)").fetchone()[0]  # type: ignore[index]
    busiest = [
        row[0]
        for row in conn.execute(
            "SELECT did FROM communities JOIN community_stats USING (did)"
            " WHERE visibility = 'public' ORDER BY post_count DESC LIMIT 10"
        )
    ]
    meta = {"viewer": "did:plc:bu0", "thread_post": thread, "busiest_communities": busiest}
    (data_dir / META_FILE).write_text(json.dumps(meta, indent=2))


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class c ON c.relname = i.indexname
        LEFT JOIN pg_constraint k ON k.conindid = c.oid
        WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) AND k.oid IS NULL
        """,
        (list(BIG_TABLES),),
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--keep-running", action="store_true")
    parser.add_argument(
        "--meta-only", action="store_true", help="only (re)write bench-meta.json of a built db"
    )
    args = parser.parse_args()
    if args.meta_only:
        server, proc = start(args.data_dir)
        try:
            with psycopg.connect(server.conninfo(), autocommit=True) as conn:
                write_meta(conn, args.data_dir)
        finally:
            stop_blocking(proc)
        return
    s = args.scale
    n = {
        "posts": max(1000, int(1_000_000 * s)),
        "communities": max(100, int(10_000 * s)),
        "votes": max(5000, int(5_000_000 * s)),
        "comments": max(THREAD_COMMENTS + 1000, int(2_000_000 * s)),
        "users": max(1000, int(100_000 * s)),
    }
    if args.data_dir.exists():
        shutil.rmtree(args.data_dir)
    print(f"building {n} in {args.data_dir}")
    started = time.perf_counter()
    server, proc = start(args.data_dir)
    try:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
            apply_migrations(conn, load_migrations())  # type: ignore[arg-type]
            conn.row_factory = psycopg.rows.tuple_row  # type: ignore[assignment]
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute("SET work_mem = '256MB'")
            indexes = secondary_indexes(conn)
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            # post_search is filled in one statement after the posts, not row by row.
            for trigger in SEARCH_TRIGGERS:
                conn.execute(f"ALTER TABLE posts DISABLE TRIGGER {trigger}")
            generate(conn, n)
            for trigger in SEARCH_TRIGGERS:
                conn.execute(f"ALTER TABLE posts ENABLE TRIGGER {trigger}")
            t = time.perf_counter()
            for _, definition in indexes:
                conn.execute(definition)
            print(f"  {'rebuilt ' + str(len(indexes)) + ' indexes':<44} {'':>10}      "
                  f"{time.perf_counter() - t:7.1f} s")  # fmt: skip
            step(conn, "vacuum analyze", "VACUUM ANALYZE")
            write_meta(conn, args.data_dir)
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            print(f"database size {size.fetchone()[0]}")  # type: ignore[index]
    finally:
        if not args.keep_running:
            stop_blocking(proc)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
