"""The world the realistic-traffic benchmark runs in: viewers, their keys, targets.

Signed-in traffic uses real service-auth tokens (ES256, unique ``jti`` per
request) signed by per-viewer keys that a local PLC-directory fixture
(``bench/plc_fixture.py``) serves in the viewers' DID documents, so Coves
runs its production authenticator: DID resolution (cold at first), the
signature check and the replay cache. The generated database's own users
(``did:plc:bu<N>``) are not valid did:plc identifiers and cannot be
resolved, so the benchmark adds its own viewers (valid did:plc DIDs derived
from an index), each subscribed to a skewed handful of communities.

Everything is deterministic in the viewer index: the client, the PLC
fixture and the set-up derive the same DIDs and keys without sharing state.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from coves.atproto.keys import PrivateKey
from tests.support.events import did as plc_did
from tests.support.fake_did import did_document

VIEWER_CURVE = "p256"
TARGETS_FILE = "traffic-targets.json"


def viewer_did(i: int) -> str:
    return plc_did(f"bench-viewer-{i}")


def viewer_key(i: int) -> PrivateKey:
    seed = hashlib.sha256(f"coves-bench-viewer-key-{i}".encode()).hexdigest()
    # Any 256-bit value below the curve order works; a SHA-256 output almost always is.
    return PrivateKey.from_hex(seed, VIEWER_CURVE)  # type: ignore[arg-type]


def viewer_document(i: int) -> dict[str, Any]:
    return did_document(
        viewer_did(i), viewer_key(i), handle=f"v{i}.bench.test", pds="https://pds.bench.test"
    )


@dataclass
class Targets:
    """What the client and the stream feed address (sampled once from the database)."""

    viewers: int
    # Public communities, busiest first (sessions pick with a skew towards the head).
    communities: list[str]
    # Posts to vote and comment on: (uri, cid, community), hottest first.
    posts: list[list[str]]
    # Existing comments to reply to: (uri, cid, root uri, root cid).
    comments: list[list[str]]
    # The generated database's users (authors and voters in the stream).
    users: list[str]
    thread_post: str
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Targets:
        return cls(**json.loads(path.read_text()))


def setup_viewers(conn: psycopg.Connection[Any], n: int, seed: int = 19) -> int:
    """Insert ``n`` bench viewers with subscriptions (idempotent); return how many were new."""
    have = conn.execute("SELECT count(*) FROM users WHERE handle LIKE 'v%.bench.test'").fetchone()
    if have is not None and int(have[0]) >= n:
        return 0
    communities = [
        row[0]
        for row in conn.execute(
            "SELECT c.did FROM communities c JOIN community_stats s USING (did)"
            " WHERE c.visibility = 'public' ORDER BY s.post_count DESC LIMIT 2000"
        )
    ]
    rnd = random.Random(seed)
    users: list[tuple[str, str, str]] = []
    subs: list[tuple[str, str, str, str]] = []
    for i in range(n):
        did = viewer_did(i)
        users.append((did, f"v{i}.bench.test", f"Viewer {i}"))
        # 3-40 subscriptions, skewed to busy communities (as people join popular ones).
        chosen: set[str] = set()
        for _ in range(rnd.randint(3, 40)):
            chosen.add(communities[min(len(communities) - 1, int(rnd.paretovariate(1.2)) - 1)])
            chosen.add(communities[rnd.randrange(len(communities))])
        for k, community in enumerate(sorted(chosen)):
            subs.append(
                (did, f"bs{k}", community, f"at://{did}/social.coves.community.subscription/bs{k}")
            )
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO users (did, handle, display_name, pds_url, active)
            SELECT d, h, n, 'https://pds.bench.test', true
            FROM unnest(%s::text[], %s::text[], %s::text[]) AS x(d, h, n)
            ON CONFLICT (did) DO NOTHING
            """,
            ([u[0] for u in users], [u[1] for u in users], [u[2] for u in users]),
        )
        conn.execute(
            """
            INSERT INTO subscriptions (uri, user_did, rkey, community_did, record_cid, created_at)
            SELECT u, d, r, c, 'bafyreibenchsub', now()
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS x(d, r, c, u)
            ON CONFLICT DO NOTHING
            """,
            (
                [s[0] for s in subs],
                [s[1] for s in subs],
                [s[2] for s in subs],
                [s[3] for s in subs],
            ),
        )
        conn.execute(
            """
            UPDATE community_stats s SET subscriber_count = x.n
            FROM (SELECT community_did, count(*)::int AS n FROM subscriptions
                  WHERE community_did = ANY(%s) GROUP BY community_did) x
            WHERE s.did = x.community_did
            """,
            (sorted({s[2] for s in subs}),),
        )
    return n


def sample_targets(conn: psycopg.Connection[Any], viewers: int, meta: dict[str, Any]) -> Targets:
    communities = [
        row[0]
        for row in conn.execute(
            "SELECT c.did FROM communities c JOIN community_stats s USING (did)"
            " WHERE c.visibility = 'public' AND c.deleted_at IS NULL"
            " ORDER BY s.post_count DESC LIMIT 3000"
        )
    ]
    posts = [
        [row[0], row[1], row[2]]
        for row in conn.execute(
            "SELECT uri, cid, community_did FROM posts WHERE deleted_at IS NULL"
            " ORDER BY hot_rank DESC LIMIT 20000"
        )
    ]
    comments = [
        [row[0], row[1], row[2], row[3]]
        for row in conn.execute(
            "SELECT c.uri, c.cid, c.root_uri, c.root_cid FROM comments c"
            " WHERE c.deleted_at IS NULL ORDER BY c.created_at DESC LIMIT 20000"
        )
    ]
    users = [
        row[0]
        for row in conn.execute(
            "SELECT did FROM users WHERE did LIKE 'did:plc:bu%' AND active LIMIT 20000"
        )
    ]
    return Targets(
        viewers=viewers,
        communities=communities,
        posts=posts,
        comments=comments,
        users=users,
        thread_post=str(meta.get("thread_post", posts[0][0] if posts else "")),
        meta=meta,
    )
