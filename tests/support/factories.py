"""SQL factories for read-path tests: rows as the indexer would leave them.

Counters are kept consistent with the rows they summarise: votes are real
vote rows (synthetic voters when a test only asks for counts) and post
counters, ranks, subscriber counts and community post counts are recomputed
from rows after each change.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from coves.db import Database
from coves.search import trigrams

INSTANCE_DID = "did:web:localhost"
INSTANCE_DOMAIN = "localhost"
POST = "social.coves.community.post"
COMMENT = "social.coves.community.comment"
VOTE = "social.coves.feed.vote"
# Real wall time: feeds compute "top of the day" against coves.clock.utcnow().
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

_seq = itertools.count(1)


BLOB_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def blob(cid: str = BLOB_CID) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/jpeg", "size": 1234}


def tid() -> str:
    """A unique record key shaped like a TID (13 base32-sortable chars)."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    n = next(_seq) + 1_000_000
    out = ""
    for _ in range(13):
        out = alphabet[n % 32] + out
        n //= 32
    return out


class Factory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def user(
        self,
        handle: str | None = None,
        *,
        did: str | None = None,
        active: bool = True,
        display_name: str | None = None,
        avatar: dict[str, Any] | None = None,
        pds_url: str | None = "https://pds.example.com",
    ) -> str:
        did = did or f"did:plc:user{next(_seq):020d}"
        await self.db.execute(
            "INSERT INTO users (did, handle, display_name, avatar, pds_url, active)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (did, handle, display_name, Jsonb(avatar) if avatar else None, pds_url, active),
        )
        return did

    async def community(
        self,
        name: str,
        *,
        did: str | None = None,
        handle: str | bool | None = True,
        hosted_by: str = INSTANCE_DID,
        visibility: str = "public",
        verification: str = "verified",
        description: str | None = None,
        display_name: str | None = None,
        avatar: dict[str, Any] | None = None,
        active: bool = True,
        deleted: bool = False,
        created_at: datetime = NOW,
        pds_url: str | None = None,
        categories: tuple[str, ...] = (),
        language: str | None = None,
        created_by: str = "did:plc:creator",
    ) -> str:
        did = did or f"did:plc:comm{next(_seq):020d}"
        if handle is True:
            domain = hosted_by.removeprefix("did:web:")
            handle = f"{name.lower()}.community.{domain}"
        await self.db.execute(
            "INSERT INTO users (did, handle, pds_url, active) VALUES (%s, %s, %s, %s)",
            (did, handle or None, pds_url, active),
        )
        record = {"$type": "social.coves.community.profile", "name": name}
        await self.db.execute(
            """
            INSERT INTO communities (did, name, display_name, description, avatar, created_by,
                hosted_by, visibility, verification, search_trigrams, record, record_cid,
                created_at, deleted_at, categories, language)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (
                did,
                name,
                display_name,
                description,
                Jsonb(avatar) if avatar else None,
                created_by,
                hosted_by,
                visibility,
                verification,
                trigrams(f"{name} {description or ''}"),
                Jsonb(record),
                "bafyreicommunity",
                created_at,
                created_at if deleted else None,
                list(categories),
                language,
            ),
        )
        return did

    async def post(
        self,
        community: str,
        author: str,
        *,
        title: str | None = "a post",
        content: str | None = "hello",
        created_at: datetime = NOW,
        ups: int = 0,
        downs: int = 0,
        embed: dict[str, Any] | None = None,
        deleted: bool = False,
        rkey: str | None = None,
    ) -> str:
        uris = await self.posts(
            community,
            author,
            [(created_at, ups, downs)],
            title=title,
            content=content,
            embed=embed,
            deleted=deleted,
            rkey=rkey,
        )
        return uris[0]

    async def posts(
        self,
        community: str,
        author: str,
        specs: list[tuple[datetime, int, int]],
        *,
        title: str | None = "a post",
        content: str | None = "hello",
        embed: dict[str, Any] | None = None,
        deleted: bool = False,
        rkey: str | None = None,
    ) -> list[str]:
        """Insert posts (created_at, ups, downs) with synthetic votes, in one transaction."""
        rows = []
        for created_at, ups, downs in specs:
            key = rkey or tid()
            uri = f"at://{community}/{POST}/{key}"
            record: dict[str, Any] = {
                "$type": POST,
                "community": community,
                "author": author,
                "createdAt": created_at.isoformat().replace("+00:00", "Z"),
            }
            if title is not None:
                record["title"] = title
            if content is not None:
                record["content"] = content
            if embed is not None:
                record["embed"] = embed
            rows.append((uri, key, created_at, ups, downs, record))

        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    """
                    INSERT INTO posts (uri, rkey, cid, community_did, author_did, title, content,
                        embed, record, created_at, ranked_at, indexed_at, deleted_at)
                    VALUES (%s, %s, 'bafyreipost', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    [
                        (
                            uri,
                            key,
                            community,
                            author,
                            title,
                            content,
                            Jsonb(embed) if embed else None,
                            Jsonb(record),
                            created_at,
                            created_at,
                            created_at,
                            created_at if deleted else None,
                        )
                        for uri, key, created_at, _, _, record in rows
                    ],
                )
                votes = [(uri, ups, downs) for uri, _, _, ups, downs, _ in rows if ups or downs]
                for uri, ups, downs in votes:
                    cur.execute(
                        """
                        INSERT INTO votes (uri, rkey, cid, rev, voter_did, subject_uri,
                            subject_cid, direction, created_at, effective)
                        SELECT 'at://did:plc:voter' || g || '/social.coves.feed.vote/' || %(k)s,
                               %(k)s, 'bafyreivote', '1', 'did:plc:voter' || g, %(uri)s,
                               'bafyreipost', CASE WHEN g <= %(ups)s THEN 1 ELSE -1 END,
                               now(), true
                        FROM generate_series(1, %(total)s) g
                        """,
                        {"k": tid(), "uri": uri, "ups": ups, "total": ups + downs},
                    )
            _refresh_posts(conn, [row[0] for row in rows])
            _refresh_community(conn, community)

        await self.db.run(work)
        return [row[0] for row in rows]

    async def vote(self, voter: str, subject: str, direction: int) -> str:
        """An effective vote by ``voter`` (replacing any earlier one) with counters updated."""
        key = tid()
        uri = f"at://{voter}/{VOTE}/{key}"

        def work(conn: Any) -> None:
            conn.execute(
                "UPDATE votes SET effective = false, deleted_at = now()"
                " WHERE voter_did = %s AND subject_uri = %s AND effective",
                (voter, subject),
            )
            conn.execute(
                """
                INSERT INTO votes (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid,
                    direction, created_at, effective)
                VALUES (%s, %s, 'bafyreivote', %s, %s, %s, 'bafyreipost', %s, now(), true)
                """,
                (uri, key, key, voter, subject, direction),
            )
            _refresh_posts(conn, [subject])

        await self.db.run(work)
        return uri

    async def subscribe(self, user: str, community: str) -> str:
        key = tid()
        uri = f"at://{user}/social.coves.community.subscription/{key}"

        def work(conn: Any) -> None:
            conn.execute(
                "INSERT INTO subscriptions (uri, user_did, rkey, community_did, record_cid,"
                " created_at) VALUES (%s, %s, %s, %s, 'bafyreisub', now())",
                (uri, user, key, community),
            )
            _refresh_community(conn, community)

        await self.db.run(work)
        return uri

    async def block(self, user: str, community: str) -> str:
        key = tid()
        uri = f"at://{user}/social.coves.community.block/{key}"
        await self.db.execute(
            "INSERT INTO blocks (uri, user_did, rkey, community_did, record_cid, created_at)"
            " VALUES (%s, %s, %s, %s, 'bafyreiblock', now())",
            (uri, user, key, community),
        )
        return uri

    async def delete_post(self, uri: str, at: datetime = NOW) -> None:
        def work(conn: Any) -> None:
            conn.execute("UPDATE posts SET deleted_at = %s WHERE uri = %s", (at, uri))
            did, collection, rkey = uri.removeprefix("at://").split("/")
            conn.execute(
                "INSERT INTO record_state (did, collection, rkey, rev, deleted, time_us,"
                " updated_at) VALUES (%s, %s, %s, 'z', true, 0, %s)"
                " ON CONFLICT (did, collection, rkey) DO UPDATE SET deleted = true",
                (did, collection, rkey, at),
            )

        await self.db.run(work)

    async def tombstone_only(self, uri: str, at: datetime = NOW) -> None:
        """A delete the indexer saw for a post it never had (record_state only)."""
        did, collection, rkey = uri.removeprefix("at://").split("/")
        await self.db.execute(
            "INSERT INTO record_state (did, collection, rkey, rev, deleted, time_us, updated_at)"
            " VALUES (%s, %s, %s, 'z', true, 0, %s)",
            (did, collection, rkey, at),
        )

    async def set_active(self, did: str, active: bool, status: str | None = None) -> None:
        """As an account event leaves it (``status``: deactivated, takendown, ...)."""
        await self.db.execute(
            "UPDATE users SET active = %s, account_status = %s WHERE did = %s",
            (active, status, did),
        )

    async def aggregator(self, did: str, name: str = "A bot") -> None:
        """An ``aggregator.service`` record of ``did``'s, as indexed."""
        record = {"$type": "social.coves.aggregator.service", "did": did, "displayName": name}
        await self.db.execute(
            "INSERT INTO aggregators (did, display_name, record, record_cid, created_at)"
            " VALUES (%s, %s, %s, 'bafyreiservice', %s)",
            (did, name, Jsonb(record), NOW),
        )

    async def authorization(self, community: str, aggregator: str, *, enabled: bool = True) -> str:
        """An ``aggregator.authorization`` record in ``community``'s repo, as indexed."""
        uri = f"at://{community}/social.coves.aggregator.authorization/{aggregator}"
        await self.db.execute(
            "INSERT INTO aggregator_authorizations (uri, community_did, rkey, aggregator_did,"
            " enabled, created_by, record_cid, created_at)"
            " VALUES (%s, %s, %s, %s, %s, 'did:plc:creator', 'bafyreiauth', %s)",
            (uri, community, aggregator, aggregator, enabled, NOW),
        )
        return uri

    async def user_block(self, blocker: str, subject: str) -> str:
        """A ``social.coves.actor.block`` record of ``blocker``'s, as indexed."""
        key = tid()
        uri = f"at://{blocker}/social.coves.actor.block/{key}"
        await self.db.execute(
            "INSERT INTO user_blocks (uri, blocker_did, rkey, subject_did, record_cid, created_at)"
            " VALUES (%s, %s, %s, %s, 'bafyreiublock', now())",
            (uri, blocker, key, subject),
        )
        return uri

    async def comment(
        self,
        post: str,
        author: str,
        *,
        parent: str | None = None,
        content: str = "a comment",
        created_at: datetime = NOW,
        deleted: bool = False,
    ) -> str:
        """A comment on ``post`` (under ``parent`` when given), counters kept."""
        key = tid()
        uri = f"at://{author}/{COMMENT}/{key}"
        parent = parent or post
        created = created_at.isoformat().replace("+00:00", "Z")
        record = {
            "$type": COMMENT,
            "reply": {
                "root": {"uri": post, "cid": "bafyreipost"},
                "parent": {"uri": parent, "cid": "bafyreiparent"},
            },
            "content": content,
            "createdAt": created,
        }

        def work(conn: Any) -> None:
            conn.execute(
                """
                INSERT INTO comments (uri, rkey, cid, commenter_did, root_uri, root_cid,
                    parent_uri, parent_cid, content, record, created_at, ranked_at, indexed_at,
                    deleted_at)
                VALUES (%s, %s, 'bafyreicomment', %s, %s, 'bafyreipost', %s, 'bafyreiparent',
                        %s, %s, %s, %s, %s, %s)
                """,
                (
                    uri,
                    key,
                    author,
                    post,
                    parent,
                    content,
                    Jsonb(record),
                    created_at,
                    created_at,
                    created_at,
                    created_at if deleted else None,
                ),
            )
            conn.execute(
                "UPDATE posts SET comment_count = (SELECT count(*) FROM comments"
                " WHERE root_uri = %(p)s AND deleted_at IS NULL) WHERE uri = %(p)s",
                {"p": post},
            )
            conn.execute(
                "UPDATE comments SET reply_count = (SELECT count(*) FROM comments c"
                " WHERE c.parent_uri = %(p)s AND c.deleted_at IS NULL) WHERE uri = %(p)s",
                {"p": parent},
            )

        await self.db.run(work)
        return uri


def _refresh_posts(conn: Any, uris: list[str]) -> None:
    conn.execute(
        """
        UPDATE posts p SET upvote_count = v.ups, downvote_count = v.downs,
            score = v.ups - v.downs,
            hot_rank = coves_hot_rank(v.ups - v.downs, p.ranked_at),
            controversy_rank = coves_controversy_rank(v.ups, v.downs)
        FROM (
            SELECT p2.uri,
                   count(*) FILTER (WHERE v.direction = 1)::int AS ups,
                   count(*) FILTER (WHERE v.direction = -1)::int AS downs
            FROM posts p2 LEFT JOIN votes v ON v.subject_uri = p2.uri AND v.effective
            WHERE p2.uri = ANY(%s)
            GROUP BY p2.uri
        ) v
        WHERE p.uri = v.uri
        """,
        (uris,),
    )


def _refresh_community(conn: Any, community: str) -> None:
    conn.execute(
        """
        UPDATE community_stats c SET
            subscriber_count = (SELECT count(*) FROM subscriptions s
                                WHERE s.community_did = c.did AND s.deleted_at IS NULL),
            post_count = (SELECT count(*) FROM posts p
                          WHERE p.community_did = c.did AND p.deleted_at IS NULL),
            last_post_at = (SELECT max(created_at) FROM posts p
                            WHERE p.community_did = c.did AND p.deleted_at IS NULL)
        WHERE c.did = %s
        """,
        (community,),
    )


def days(n: float) -> timedelta:
    return timedelta(days=n)
