"""Rows for thread tests, written straight to the tables the indexer fills.

Counters (reply_count, score, hot_rank) are set the way the indexer keeps
them: reply_count counts live direct replies, score = ups - downs and
hot_rank = coves_hot_rank(score, ranked_at).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from coves.db import Database

COMMUNITY = "did:plc:community1"
POST_COLLECTION = "social.coves.community.post"
COMMENT_COLLECTION = "social.coves.community.comment"
VOTE_COLLECTION = "social.coves.feed.vote"
BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

_seq = itertools.count(1)


def rkey() -> str:
    return f"3k{next(_seq):011d}"


def cid(tag: str = "") -> str:
    return f"bafyrei{tag}{next(_seq):020d}"


@dataclass(frozen=True)
class Ref:
    uri: str
    cid: str


async def user(
    db: Database,
    did: str,
    handle: str | None = None,
    *,
    active: bool = True,
    display_name: str | None = None,
    avatar_cid: str | None = None,
    pds_url: str | None = "https://pds.example",
) -> str:
    avatar = (
        orjson.dumps({"cid": avatar_cid, "mimeType": "image/jpeg", "size": 10}).decode()
        if avatar_cid
        else None
    )
    await db.execute(
        """
        INSERT INTO users (did, handle, display_name, avatar, pds_url, active)
        VALUES (%s, %s, %s, %s::jsonb, %s, %s)
        ON CONFLICT (did) DO NOTHING
        """,
        (did, handle, display_name, avatar, pds_url, active),
    )
    return did


async def community(db: Database, did: str = COMMUNITY, *, deleted: bool = False) -> str:
    await user(db, did, "gaming.community.coves.test")
    await db.execute(
        """
        INSERT INTO communities (did, name, display_name, created_by, hosted_by, record,
                                 record_cid, created_at, verification, deleted_at)
        VALUES (%s, 'gaming', 'Gaming', 'did:plc:creator', 'did:web:coves.test', '{}',
                %s, %s, 'verified', %s)
        """,
        (did, cid(), BASE_TIME, BASE_TIME if deleted else None),
    )
    return did


async def post(
    db: Database,
    *,
    author: str = "did:plc:poster",
    community_did: str = COMMUNITY,
    deleted: bool = False,
    title: str = "A post",
) -> Ref:
    await user(db, author)
    key = rkey()
    uri = f"at://{community_did}/{POST_COLLECTION}/{key}"
    ref = Ref(uri, cid("p"))
    record = {
        "$type": POST_COLLECTION,
        "community": community_did,
        "author": author,
        "title": title,
        "createdAt": "2026-01-01T12:00:00.000Z",
    }
    await db.execute(
        """
        INSERT INTO posts (uri, rkey, cid, community_did, author_did, title, content, record,
                           created_at, ranked_at, deleted_at)
        VALUES (%s, %s, %s, %s, %s, %s, 'body', %s::jsonb, %s, %s, %s)
        """,
        (
            uri,
            key,
            ref.cid,
            community_did,
            author,
            title,
            orjson.dumps(record).decode(),
            BASE_TIME,
            BASE_TIME,
            BASE_TIME if deleted else None,
        ),
    )
    return ref


async def comment(
    db: Database,
    root: Ref,
    parent: Ref | None = None,
    *,
    author: str = "did:plc:alice",
    content: str = "hello",
    ups: int = 0,
    downs: int = 0,
    minutes: float = 0.0,
    deleted: bool = False,
    embed: dict[str, Any] | None = None,
    facets: list[Any] | None = None,
    at: datetime | None = None,
    langs: list[str] | None = None,
    labels: dict[str, Any] | None = None,
) -> Ref:
    """A comment ``minutes`` after BASE_TIME; bumps the parent's reply_count when live."""
    parent = parent or root
    key = rkey()
    uri = f"at://{author}/{COMMENT_COLLECTION}/{key}"
    ref = Ref(uri, cid("c"))
    at = at or BASE_TIME + timedelta(minutes=minutes)
    record = {
        "$type": COMMENT_COLLECTION,
        "reply": {
            "root": {"uri": root.uri, "cid": root.cid},
            "parent": {"uri": parent.uri, "cid": parent.cid},
        },
        "content": content,
        "createdAt": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    await db.execute(
        """
        INSERT INTO comments (uri, rkey, cid, commenter_did, root_uri, root_cid, parent_uri,
                              parent_cid, content, facets, embed, record, created_at, ranked_at,
                              langs, labels, deleted_at, upvote_count, downvote_count, score,
                              hot_rank)
        VALUES (%(uri)s, %(rkey)s, %(cid)s, %(author)s, %(root)s, %(root_cid)s, %(parent)s,
                %(parent_cid)s, %(content)s, %(facets)s::jsonb, %(embed)s::jsonb,
                %(record)s::jsonb, %(at)s, %(at)s, %(langs)s, %(labels)s::jsonb, %(deleted)s,
                %(ups)s, %(downs)s, %(score)s, coves_hot_rank(%(score)s, %(at)s))
        """,
        {
            "uri": uri,
            "rkey": key,
            "cid": ref.cid,
            "author": author,
            "root": root.uri,
            "root_cid": root.cid,
            "parent": parent.uri,
            "parent_cid": parent.cid,
            "content": None if deleted else content,
            "facets": orjson.dumps(facets).decode() if facets else None,
            "embed": orjson.dumps(embed).decode() if embed else None,
            "record": None if deleted else orjson.dumps(record).decode(),
            "at": at,
            "langs": langs or [],
            "labels": orjson.dumps(labels).decode() if labels else None,
            "deleted": at + timedelta(minutes=1) if deleted else None,
            "ups": ups,
            "downs": downs,
            "score": ups - downs,
        },
    )
    if not deleted and parent.uri != root.uri:
        await db.execute(
            "UPDATE comments SET reply_count = reply_count + 1 WHERE uri = %s", (parent.uri,)
        )
    return ref


async def set_votes(db: Database, target: Ref, ups: int, downs: int = 0) -> None:
    """Move a comment's counters the way the indexer does after votes."""
    await db.execute(
        """
        UPDATE comments SET upvote_count = %(u)s, downvote_count = %(d)s, score = %(s)s,
               hot_rank = coves_hot_rank(%(s)s, ranked_at)
        WHERE uri = %(uri)s
        """,
        {"u": ups, "d": downs, "s": ups - downs, "uri": target.uri},
    )


async def vote(db: Database, voter: str, subject: Ref, direction: int) -> str:
    key = rkey()
    uri = f"at://{voter}/{VOTE_COLLECTION}/{key}"
    await db.execute(
        """
        INSERT INTO votes (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid, direction,
                           created_at, effective)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true)
        """,
        (uri, key, cid("v"), key, voter, subject.uri, subject.cid, direction, BASE_TIME),
    )
    return uri


async def thread_fixture(db: Database) -> Ref:
    """A community and a post, ready for comments."""
    await community(db)
    return await post(db)
