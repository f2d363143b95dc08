"""Generate a realistic comment thread for benchmarks (default: 2 000 comments).

Shape, per Reddit/Lemmy threads: about a third of comments are top-level;
replies attach preferentially to comments that already drew replies and to
recent ones, which gives a few long chains (depth 10-25) and many short
branches. Scores are heavy-tailed, about 3% of comments are deleted (their
replies stay), 1% are by a deactivated account, and a fixed viewer
(``VIEWER_DID``) has voted on about 10% of comments, so viewer-state lookups
have work to do.

Library use (the read-API bench calls this):

    from bench.gen_thread import generate_thread
    info = generate_thread(conn)   # psycopg connection to a migrated database
    info.post_uri                  # pass as getComments?post=...

CLI: ``python bench/gen_thread.py --dsn postgresql://... [--comments 2000]``
prints the post URI (the database must already be migrated).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

COMMUNITY_DID = "did:plc:benchcommunity"
POST_COLLECTION = "social.coves.community.post"
COMMENT_COLLECTION = "social.coves.community.comment"
VOTE_COLLECTION = "social.coves.feed.vote"
VIEWER_DID = "did:plc:benchviewer"
INACTIVE_DID = "did:plc:benchinactive"
MAX_DEPTH = 30


@dataclass(frozen=True)
class ThreadInfo:
    post_uri: str
    post_cid: str
    comments: int
    top_level: int
    max_depth: int
    viewer_did: str


def _tid(n: int) -> str:
    return f"3k{n:011d}"


def generate_thread(
    conn: psycopg.Connection[Any],
    *,
    comments: int = 2000,
    users: int = 200,
    seed: int = 1,
    thread_no: int = 1,
    now: datetime | None = None,
) -> ThreadInfo:
    """Insert one post and ``comments`` comments under it, in one transaction."""
    rng = random.Random(seed * 1_000_003 + thread_no)
    now = now or datetime.now(UTC)
    start = now - timedelta(hours=36)
    base = thread_no * 10_000_000
    post_uri = f"at://{COMMUNITY_DID}/{POST_COLLECTION}/{_tid(base)}"
    post_cid = f"bafyreibenchpost{base:012d}"

    user_dids = [f"did:plc:benchuser{i:05d}" for i in range(users)]
    user_rows = [
        (did, f"user{i}.bench.test", f"User {i}", "https://pds.bench.test", True)
        for i, did in enumerate(user_dids)
    ]
    user_rows.append((INACTIVE_DID, "inactive.bench.test", None, None, False))
    user_rows.append((VIEWER_DID, "viewer.bench.test", "Viewer", None, True))
    user_rows.append((COMMUNITY_DID, "bench.community.coves.test", None, None, True))

    # Tree: (uri, cid, parent index or -1, depth, created_at)
    nodes: list[dict[str, Any]] = []
    child_count: list[int] = []
    for i in range(comments):
        at = start + timedelta(seconds=30 * i + rng.random() * 30)
        parent = -1
        if nodes and rng.random() > 0.33:
            if rng.random() < 0.5:
                # Recent activity: conversations continue where they are.
                parent = rng.randrange(max(0, len(nodes) - 40), len(nodes))
            else:
                # Preferential: busy comments draw more replies.
                weights = [1 + 3 * c for c in child_count]
                parent = rng.choices(range(len(nodes)), weights=weights)[0]
            if nodes[parent]["depth"] >= MAX_DEPTH:
                parent = -1
        depth = 0 if parent < 0 else nodes[parent]["depth"] + 1
        author = INACTIVE_DID if rng.random() < 0.01 else rng.choice(user_dids)
        ups = int(rng.paretovariate(1.2)) - 1
        downs = int(rng.paretovariate(2.0)) - 1
        key = _tid(base + i + 1)
        nodes.append(
            {
                "uri": f"at://{author}/{COMMENT_COLLECTION}/{key}",
                "rkey": key,
                "cid": f"bafyreibenchcomment{base + i:012d}",
                "author": author,
                "parent": parent,
                "depth": depth,
                "at": at,
                "ups": ups,
                "downs": downs,
                "deleted": rng.random() < 0.03,
            }
        )
        child_count.append(0)
        if parent >= 0:
            child_count[parent] += 1

    comment_rows = []
    for node in nodes:
        parent = nodes[node["parent"]] if node["parent"] >= 0 else None
        parent_uri = parent["uri"] if parent else post_uri
        parent_cid = parent["cid"] if parent else post_cid
        content = f"Comment at depth {node['depth']}: " + "lorem ipsum dolor " * rng.randint(1, 12)
        record = {
            "$type": COMMENT_COLLECTION,
            "reply": {
                "root": {"uri": post_uri, "cid": post_cid},
                "parent": {"uri": parent_uri, "cid": parent_cid},
            },
            "content": content,
            "createdAt": node["at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        deleted = node["deleted"]
        comment_rows.append(
            (
                node["uri"],
                node["rkey"],
                node["cid"],
                node["author"],
                post_uri,
                post_cid,
                parent_uri,
                parent_cid,
                None if deleted else content,
                None if deleted else orjson.dumps(record).decode(),
                node["at"],
                node["at"],
                node["at"] + timedelta(minutes=5) if deleted else None,
                node["ups"],
                node["downs"],
                node["ups"] - node["downs"],
            )
        )

    vote_rows = []
    for i, node in enumerate(nodes):
        if not node["deleted"] and rng.random() < 0.10:
            key = _tid(base + 5_000_000 + i)
            vote_rows.append(
                (
                    f"at://{VIEWER_DID}/{VOTE_COLLECTION}/{key}",
                    key,
                    f"bafyreibenchvote{base + i:012d}",
                    key,
                    VIEWER_DID,
                    node["uri"],
                    node["cid"],
                    1 if rng.random() < 0.8 else -1,
                    node["at"],
                )
            )

    with conn.transaction():
        conn.cursor().executemany(
            """
            INSERT INTO users (did, handle, display_name, pds_url, active)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT (did) DO NOTHING
            """,
            user_rows,
        )
        conn.execute(
            """
            INSERT INTO communities (did, name, display_name, created_by, hosted_by, record,
                                     record_cid, created_at, verification)
            VALUES (%s, 'bench', 'Bench', %s, 'did:web:coves.test', '{}', 'bafyreibenchcomm',
                    %s, 'verified')
            ON CONFLICT (did) DO NOTHING
            """,
            (COMMUNITY_DID, user_dids[0], start),
        )
        post_record = {
            "$type": POST_COLLECTION,
            "community": COMMUNITY_DID,
            "author": user_dids[0],
            "title": f"Bench thread {thread_no}",
            "createdAt": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        conn.execute(
            """
            INSERT INTO posts (uri, rkey, cid, community_did, author_did, title, content, record,
                               created_at, ranked_at)
            VALUES (%s, %s, %s, %s, %s, %s, 'A long thread.', %s, %s, %s)
            """,
            (
                post_uri,
                _tid(base),
                post_cid,
                COMMUNITY_DID,
                user_dids[0],
                f"Bench thread {thread_no}",
                orjson.dumps(post_record).decode(),
                start,
                start,
            ),
        )
        with conn.cursor().copy(
            """
            COPY comments (uri, rkey, cid, commenter_did, root_uri, root_cid, parent_uri,
                           parent_cid, content, record, created_at, ranked_at, deleted_at,
                           upvote_count, downvote_count, score)
            FROM STDIN
            """
        ) as copy:
            for row in comment_rows:
                copy.write_row(row)
        with conn.cursor().copy(
            """
            COPY votes (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid, direction,
                        created_at)
            FROM STDIN
            """
        ) as copy:
            for row in vote_rows:
                copy.write_row(row)
        # Counters as the indexer keeps them.
        conn.execute("UPDATE votes SET effective = true WHERE voter_did = %s", (VIEWER_DID,))
        conn.execute(
            """
            UPDATE comments c
            SET hot_rank = coves_hot_rank(c.score, c.ranked_at),
                reply_count = coalesce((SELECT count(*) FROM comments k
                                        WHERE k.parent_uri = c.uri AND k.deleted_at IS NULL), 0)
            WHERE c.root_uri = %s
            """,
            (post_uri,),
        )
        conn.execute(
            """
            UPDATE posts SET comment_count = (SELECT count(*) FROM comments
                                              WHERE parent_uri = %s AND deleted_at IS NULL)
            WHERE uri = %s
            """,
            (post_uri, post_uri),
        )
    conn.execute("ANALYZE comments")
    conn.execute("ANALYZE votes")
    return ThreadInfo(
        post_uri=post_uri,
        post_cid=post_cid,
        comments=comments,
        top_level=sum(1 for n in nodes if n["parent"] < 0),
        max_depth=max((n["depth"] for n in nodes), default=0),
        viewer_did=VIEWER_DID,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL conninfo (migrated database)")
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--thread-no", type=int, default=1)
    args = parser.parse_args()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        info = generate_thread(
            conn, comments=args.comments, seed=args.seed, thread_no=args.thread_no
        )
    print(info.post_uri)
    print(
        f"# {info.comments} comments, {info.top_level} top-level, max depth {info.max_depth}",
    )


if __name__ == "__main__":
    main()
