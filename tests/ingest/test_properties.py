"""Property: any interleaving, duplication, replay and batching of a stream ends in
the state of applying it once in order, and every counter equals a recount.

Streams are generated per repo with consistent revs (creates, updates and
deletes of posts, comments, votes and subscriptions); delivery then keeps
per-repo order (Jetstream's guarantee) but interleaves repos freely, redelivers
events (at-least-once) and rewinds to an earlier point (consumer restart).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from tests.support.database import TestPostgres
from tests.support.events import (
    COMMENT,
    POST,
    SUBSCRIPTION,
    VOTE,
    Stream,
    comment_record,
    did,
    frames,
    post_record,
    subscription_record,
    tid,
    uri,
    vote_record,
)

COMMUNITIES = [did("community-a"), did("community-b")]
USERS = [did("user-1"), did("user-2"), did("user-3")]
POST_KEYS = ["3kp0", "3kp1"]
COMMENT_KEYS = ["3kc0", "3kc1"]
VOTE_KEYS = ["3kv0", "3kv1"]
SUB_KEYS = ["3ks0", "3ks1"]

POST_URIS = [uri(c, POST, k) for c in COMMUNITIES for k in POST_KEYS]
COMMENT_URIS = [uri(u, COMMENT, k) for u in USERS for k in COMMENT_KEYS]


@dataclass
class Generated:
    events: list[dict[str, Any]] = field(default_factory=list)


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A stream with consistent per-record lifecycles and increasing revs."""
    clock = Stream()
    live: dict[tuple[str, str, str], dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=16))):
        kind = draw(st.sampled_from(["post", "comment", "vote", "subscription"]))
        if kind == "post":
            repo = draw(st.sampled_from(COMMUNITIES))
            collection, rkey = POST, draw(st.sampled_from(POST_KEYS))
        else:
            repo = draw(st.sampled_from(USERS))
            collection, rkey = {
                "comment": (COMMENT, draw(st.sampled_from(COMMENT_KEYS))),
                "vote": (VOTE, draw(st.sampled_from(VOTE_KEYS))),
                "subscription": (SUBSCRIPTION, draw(st.sampled_from(SUB_KEYS))),
            }[kind]
        key = (repo, collection, rkey)
        now = clock.tick()
        if key in live and draw(st.booleans()):
            del live[key]
            events.append(clock.delete(repo, collection, rkey, time_us=now))
            continue
        operation = "update" if key in live else "create"
        if collection == POST:
            record = post_record(repo, draw(st.sampled_from(USERS)), title=f"t{now % 97}")
        elif collection == COMMENT:
            if operation == "update":  # threading is immutable: keep the live refs
                reply = live[key]["reply"]
                record = {**live[key], "content": f"edit {now % 97}", "reply": reply}
            else:
                root = draw(st.sampled_from(POST_URIS))
                parent = draw(st.sampled_from([root, *COMMENT_URIS]))
                if parent == uri(repo, COMMENT, rkey):
                    parent = root
                record = comment_record(root, parent, f"c{now % 97}")
        elif collection == VOTE:
            subject = draw(st.sampled_from(POST_URIS + COMMENT_URIS))
            record = vote_record(subject, draw(st.sampled_from(["up", "down"])))
        else:
            record = subscription_record(
                draw(st.sampled_from(COMMUNITIES)), draw(st.integers(1, 5))
            )
        live[key] = record
        events.append(
            clock.commit(repo, collection, rkey, record, operation=operation, time_us=now)
        )
    return events


def deliver(events: list[dict[str, Any]], rnd: random.Random) -> list[dict[str, Any]]:
    """Per-repo order kept, repos interleaved, duplicates and a rewind added."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        queues.setdefault(event["did"], []).append(event)
    merged: list[dict[str, Any]] = []
    while queues:
        repo = rnd.choice(sorted(queues))
        merged.append(queues[repo].pop(0))
        if not queues[repo]:
            del queues[repo]
    out: list[dict[str, Any]] = []
    for event in merged:
        out.append(event)
        if rnd.random() < 0.2:
            out.append(rnd.choice(out))  # redelivery of anything already seen
    cut = rnd.randint(0, len(out))
    rewind = rnd.randint(0, cut)
    return out[:cut] + out[rewind:]  # the consumer restarted from an older cursor


SNAPSHOT = {
    # The stored rev of every record: its row's, or record_state's when newer or
    # when it has no row (which of the two holds it depends on batching).
    "revs": """
        WITH row_revs AS (
            SELECT community_did AS did, 'social.coves.community.post' AS collection, rkey, rev
            FROM posts
            UNION ALL SELECT commenter_did, 'social.coves.community.comment', rkey, rev
            FROM comments
            UNION ALL SELECT voter_did, 'social.coves.feed.vote', rkey, rev FROM votes
            UNION ALL SELECT user_did, 'social.coves.community.subscription', rkey, rev
            FROM subscriptions
            UNION ALL SELECT did, collection, rkey, rev FROM record_state)
        SELECT did, collection, rkey, max(rev) FROM row_revs GROUP BY did, collection, rkey
        """,
    "tombstones": "SELECT did, collection, rkey FROM record_state WHERE deleted",
    "posts": "SELECT uri, author_did, community_did, title, content, created_at, ranked_at,"
    " edited_at, deleted_at, upvote_count, downvote_count, score, comment_count,"
    " round(hot_rank::numeric, 9) AS hot, controversy_rank FROM posts",
    "comments": "SELECT uri, root_uri, parent_uri, content, record, deleted_at, edited_at,"
    " upvote_count, downvote_count, score, reply_count FROM comments",
    "votes": "SELECT uri, rev, subject_uri, direction, deleted_at, effective FROM votes",
    "subscriptions": "SELECT uri, community_did, content_visibility, deleted_at FROM subscriptions",
    "community_stats": "SELECT did, subscriber_count, post_count, last_post_at"
    " FROM community_stats WHERE (subscriber_count, post_count) <> (0, 0)",
    "users": "SELECT did FROM users",
}


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name, query in SNAPSHOT.items():
        rows = await db.fetch(query)
        out[name] = sorted(tuple(str(v) for v in row.values()) for row in rows)
    return out


# Counters recomputed from rows, written independently of the indexer's SQL
# (including which vote is effective).
RECOUNT_MISMATCHES = """
WITH win AS (
    SELECT DISTINCT ON (voter_did, subject_uri) uri, subject_uri, direction
    FROM votes WHERE deleted_at IS NULL
    ORDER BY voter_did, subject_uri, rev DESC, uri DESC
),
tally AS (
    SELECT subject_uri, count(*) FILTER (WHERE direction = 1) AS up,
           count(*) FILTER (WHERE direction = -1) AS down
    FROM win GROUP BY subject_uri
)
SELECT 'post ' || p.uri AS bad FROM posts p LEFT JOIN tally t ON t.subject_uri = p.uri
WHERE p.upvote_count <> coalesce(t.up, 0) OR p.downvote_count <> coalesce(t.down, 0)
   OR p.score <> coalesce(t.up, 0) - coalesce(t.down, 0)
   OR p.comment_count <> (SELECT count(*) FROM comments c
                          WHERE c.root_uri = p.uri AND c.deleted_at IS NULL)
   OR p.hot_rank <> coves_hot_rank(p.score, p.ranked_at)
   OR p.controversy_rank <> coves_controversy_rank(p.upvote_count, p.downvote_count)
UNION ALL
SELECT 'comment ' || c.uri FROM comments c LEFT JOIN tally t ON t.subject_uri = c.uri
WHERE c.upvote_count <> coalesce(t.up, 0) OR c.downvote_count <> coalesce(t.down, 0)
   OR c.score <> coalesce(t.up, 0) - coalesce(t.down, 0)
   OR c.reply_count <> (SELECT count(*) FROM comments r
                        WHERE r.parent_uri = c.uri AND r.deleted_at IS NULL)
   OR c.hot_rank <> coves_hot_rank(c.score, c.ranked_at)
   OR c.controversy_rank <> coves_controversy_rank(c.upvote_count, c.downvote_count)
UNION ALL
SELECT 'vote ' || v.uri FROM votes v
WHERE v.effective <> EXISTS (SELECT 1 FROM win WHERE win.uri = v.uri)
UNION ALL
SELECT 'community ' || k.did
FROM (SELECT did FROM communities UNION SELECT community_did FROM subscriptions
      UNION SELECT community_did FROM posts) k
LEFT JOIN community_stats m ON m.did = k.did
WHERE coalesce(m.subscriber_count, 0) <> (SELECT count(DISTINCT user_did) FROM subscriptions s
                             WHERE s.community_did = k.did AND s.deleted_at IS NULL)
   OR coalesce(m.post_count, 0) <> (SELECT count(*) FROM posts p
                       WHERE p.community_did = k.did AND p.deleted_at IS NULL)
   OR m.last_post_at IS DISTINCT FROM (SELECT max(ranked_at) FROM posts p
                                       WHERE p.community_did = k.did AND p.deleted_at IS NULL)
UNION ALL
SELECT 'community without stats ' || c.did FROM communities c
WHERE NOT EXISTS (SELECT 1 FROM community_stats m WHERE m.did = c.did)
"""


async def run(pg: TestPostgres, batches: list[list[dict[str, Any]]]) -> tuple[Any, list[Any]]:
    name = await trio.to_thread.run_sync(pg.create_database)
    try:
        async with Database(pg.conninfo(name), pool_size=2) as db:
            indexer = Indexer(db, instance_did="did:web:coves.test", metrics=Metrics())
            # Communities exist so their counters are checked too.
            from tests.support.events import PROFILE, community_record

            seed = Stream(start_us=1_700_000_000_000_000)
            await indexer.apply(
                frames(
                    *(
                        seed.commit(
                            c, PROFILE, "self", community_record("c", "did:web:coves.test", c)
                        )
                        for c in COMMUNITIES
                    )
                )
            )
            for batch in batches:
                await indexer.apply(frames(*batch))
            state = await snapshot(db)
            bad = await db.fetch(RECOUNT_MISMATCHES)
            return state, bad
    finally:
        await trio.to_thread.run_sync(pg.drop_database, name)


def chunks(events: list[dict[str, Any]], rnd: random.Random) -> list[list[dict[str, Any]]]:
    out, i = [], 0
    while i < len(events):
        size = rnd.randint(1, 8)
        out.append(events[i : i + size])
        i += size
    return out


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=streams(), seed=st.integers(0, 2**32))
def test_any_delivery_converges_to_in_order_state(
    pg: TestPostgres, events: list[dict[str, Any]], seed: int
) -> None:
    rnd = random.Random(seed)
    delivered = deliver(events, rnd)

    async def scenario() -> None:
        with trio.fail_after(60):
            expected, bad_expected = await run(pg, [[e] for e in events])
            got, bad_got = await run(pg, chunks(delivered, rnd))
        assert bad_expected == []
        assert bad_got == []
        assert got == expected

    trio.run(scenario)


def test_tid_builder_orders_like_time() -> None:
    assert tid(1) < tid(2) < tid(2**40) < tid(2**52)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


_LEXICONS: list[LexiconRegistry] = []


def _lexicons() -> LexiconRegistry:
    if not _LEXICONS:
        _LEXICONS.append(LexiconRegistry.load())
    return _LEXICONS[0]


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """Valid events with one field replaced by an arbitrary JSON value (or removed)."""
    clock = Stream()
    post = uri(COMMUNITIES[0], POST, "3kp0")
    event = draw(
        st.sampled_from(
            [
                clock.commit(COMMUNITIES[0], POST, "3kp0", post_record(COMMUNITIES[0], USERS[0])),
                clock.commit(USERS[0], COMMENT, "3kc0", comment_record(post, post)),
                clock.commit(USERS[0], VOTE, "3kv0", vote_record(post)),
                clock.commit(USERS[0], SUBSCRIPTION, "3ks0", subscription_record(COMMUNITIES[0])),
                clock.identity(USERS[0], "user.example.com"),
                clock.account(USERS[0], False, "takendown"),
            ]
        )
    )
    target = event
    path = draw(
        st.lists(st.sampled_from(["commit", "record", "reply", "subject", "root"]), max_size=3)
    )
    for step in path:
        if isinstance(target.get(step), dict):
            target = target[step]
    key = draw(st.sampled_from(sorted(target)))
    if draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(json_values)
    return orjson.dumps(event)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(mutated_events(), json_values.map(orjson.dumps), st.binary(max_size=64)))
def test_prepare_never_raises_and_classifies_every_frame(data: bytes) -> None:
    indexer = Indexer(
        None,  # type: ignore[arg-type]  # prepare never touches the database
        instance_did="did:web:coves.test",
        metrics=Metrics(),
        validator=_lexicons(),
    )
    batch = indexer.prepare(frames(data), now_us=2_000_000_000_000_000)
    classified = (
        len(batch.commits)
        + len(batch.identities)
        + len(batch.accounts)
        + len(batch.dead)
        + len(batch.ignored)
    )
    assert classified == 1 == batch.frames
