"""Comment reads (coves/read/comments/ assembles them into threads and lists).

Every thread query returns comment rows joined with their author, so one
round trip per tree level is all a thread costs. Deleted comments keep their
rows; they are returned only while something still hangs under them (a
placeholder with nothing below it is noise), which the ``_VISIBLE`` filter
decides with one index probe per deleted row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from psycopg import Connection

from coves.db import Database, Row

Sort = Literal["hot", "top", "new"]

# ORDER BY clauses matching the comments_parent_{hot,top,new} indexes exactly,
# so a per-parent "ORDER BY ... LIMIT n" is an index range read.
_ORDER: dict[str, str] = {
    "hot": "c.hot_rank DESC, c.uri DESC",
    "top": "c.score DESC, c.ranked_at DESC, c.uri DESC",
    "new": "c.ranked_at DESC, c.uri DESC",
}
# The same order applied to the outer (already limited) result.
_OUTER_ORDER: dict[str, str] = {
    "hot": "r.hot_rank DESC, r.uri DESC",
    "top": "r.score DESC, r.ranked_at DESC, r.uri DESC",
    "new": "r.ranked_at DESC, r.uri DESC",
}

_VISIBLE = "(c.deleted_at IS NULL OR EXISTS (SELECT 1 FROM comments k WHERE k.parent_uri = c.uri))"

_COMMENT_COLUMNS = """
    c.uri, c.cid, c.commenter_did, c.root_uri, c.root_cid, c.parent_uri, c.parent_cid,
    c.content, c.facets, c.embed, c.labels, c.langs, c.record, c.created_at, c.ranked_at,
    c.indexed_at, c.edited_at, c.deleted_at, c.upvote_count, c.downvote_count, c.score,
    c.reply_count, c.hot_rank
"""

_AUTHOR_COLUMNS = """
    u.handle AS author_handle, u.display_name AS author_display_name,
    u.avatar AS author_avatar, u.pds_url AS author_pds_url,
    coalesce(u.active, true) AS author_active, u.account_status AS author_status
"""


def _order(sort: str) -> str:
    try:
        return _ORDER[sort]
    except KeyError:
        raise ValueError(f"unknown comment sort {sort!r}") from None


def top_level_ranked_uris(
    conn: Connection[Row], post_uri: str, sort: Sort, since: datetime | None, cap: int
) -> list[str]:
    """The ordered URIs of a post's top-level comments: what a hot/top snapshot freezes
    (on a connection, so the snapshot is stored in the same thread hop)."""
    since_clause = "AND c.ranked_at >= %(since)s" if since is not None else ""
    rows = conn.execute(
        f"""
        SELECT c.uri FROM comments c
        WHERE c.parent_uri = %(post)s AND {_VISIBLE} {since_clause}
        ORDER BY {_order(sort)}
        LIMIT %(cap)s
        """,
        {"post": post_uri, "since": since, "cap": cap},
        prepare=True,
    ).fetchall()
    return [row["uri"] for row in rows]


_BY_URIS_SQL = f"""
    SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
    FROM comments c
    LEFT JOIN users u ON u.did = c.commenter_did
    WHERE c.uri = ANY(%(uris)s) AND {_VISIBLE}
"""


def _new_page_sql(keyset: str) -> str:
    return f"""
        SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
        FROM comments c
        LEFT JOIN users u ON u.did = c.commenter_did
        WHERE c.parent_uri = %(post)s AND {_VISIBLE} {keyset}
        ORDER BY c.ranked_at DESC, c.uri DESC
        LIMIT %(limit)s
    """


# Two statements rather than one with an "IS NULL OR" so the keyset stays an
# index condition on comments_parent_new.
_NEW_FIRST_SQL = _new_page_sql("")
_NEW_AFTER_SQL = _new_page_sql("AND (c.ranked_at, c.uri) < (%(at)s, %(uri)s)")


def _replies_sql(sort: str) -> str:
    return f"""
        SELECT r.*, {_AUTHOR_COLUMNS}
        FROM unnest(%(parents)s::text[]) WITH ORDINALITY AS p(uri, ord)
        CROSS JOIN LATERAL (
            SELECT {_COMMENT_COLUMNS}
            FROM comments c
            WHERE c.parent_uri = p.uri AND {_VISIBLE}
            ORDER BY {_order(sort)}
            LIMIT %(limit)s
        ) r
        LEFT JOIN users u ON u.did = r.commenter_did
        ORDER BY p.ord, {_OUTER_ORDER[sort]}
    """


BY_RKEY_SQL = f"""
    SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
    FROM comments c
    LEFT JOIN users u ON u.did = c.commenter_did
    WHERE c.root_uri = %(post)s AND c.rkey = %(rkey)s
    ORDER BY c.uri
    LIMIT 1
"""


async def by_rkey(db: Database, post_uri: str, rkey: str) -> Row | None:
    """The comment with record key ``rkey`` under ``post_uri`` (comments_root_rkey),
    deleted or not; the first by URI should two repos use the same key."""
    return await db.fetchrow(BY_RKEY_SQL, {"post": post_uri, "rkey": rkey})


LIVE_BY_URIS_SQL = f"""
    SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
    FROM comments c
    LEFT JOIN users u ON u.did = c.commenter_did
    WHERE c.uri = ANY(%(uris)s::text[]) AND c.deleted_at IS NULL
"""


async def live_by_uris(db: Database, uris: list[str]) -> list[Row]:
    """Live comments with their authors, any order (an actor's comment page)."""
    if not uris:
        return []
    return await db.fetch(LIVE_BY_URIS_SQL, {"uris": uris})


# Public so benchmarks can EXPLAIN exactly what the endpoint runs.
REPLIES_SQL: dict[str, str] = {sort: _replies_sql(sort) for sort in _ORDER}


def _children(sort: str, parent: str) -> str:
    """Up to ``limit`` replies of ``parent`` in sort order, ranked, with their author."""
    return f"""
        SELECT x.*, {_AUTHOR_COLUMNS}
        FROM (
            SELECT {_COMMENT_COLUMNS}, row_number() OVER (ORDER BY {_order(sort)}) AS rn
            FROM comments c
            WHERE c.parent_uri = {parent} AND {_VISIBLE}
            ORDER BY {_order(sort)}
            LIMIT %(limit)s
        ) x
        LEFT JOIN users u ON u.did = x.commenter_did
    """


def _tree_sql(sort: str) -> str:
    # Breadth first; only shown replies (rn <= shown) are expanded. Without an
    # ORDER BY the recursive CTE is evaluated lazily, so the LIMIT bounds the
    # work on a huge thread.
    return f"""
        WITH RECURSIVE tree AS (
            SELECT r.*, 1 AS lvl
            FROM unnest(%(parents)s::text[]) AS p(uri)
            CROSS JOIN LATERAL ({_children(sort, "p.uri")}) r
          UNION ALL
            SELECT r.*, t.lvl + 1
            FROM tree t
            CROSS JOIN LATERAL ({_children(sort, "t.uri")}) r
            WHERE t.lvl < %(depth)s AND t.rn <= %(shown)s
        )
        SELECT * FROM tree LIMIT %(cap)s
    """


# Every reply level in one statement (see fetch_thread).
TREE_SQL: dict[str, str] = {sort: _tree_sql(sort) for sort in _ORDER}

# One probe of votes_one_effective (voter, subject) per URI: matched on the voter
# alone, the planner would read every vote a heavy voter ever cast.
_VOTES_SQL = """
    SELECT v.subject_uri, v.uri, v.direction
    FROM unnest(%(uris)s::text[]) AS k(uri)
    CROSS JOIN LATERAL (
        SELECT subject_uri, uri, direction FROM votes
        WHERE voter_did = %(viewer)s AND subject_uri = k.uri AND effective
          AND deleted_at IS NULL
        LIMIT 1) v
"""


@dataclass(frozen=True)
class PageByUris:
    """A top-level page named by URI (from a frozen snapshot); order is the caller's."""

    uris: list[str]


@dataclass(frozen=True)
class PageNew:
    """Newest-first top-level comments after a keyset position, ``limit`` rows at most."""

    post_uri: str
    after: tuple[datetime, str] | None
    limit: int


@dataclass
class ThreadRows:
    top: list[Row]
    # Replies by parent URI, in sort order, at most ``per_parent + 1`` each: the
    # extra row only tells the caller that more exist.
    children: dict[str, list[Row]] = field(default_factory=dict)
    more: bool = False  # PageNew: another top-level page exists
    # Shown comments whose replies were not read because the response budget ran out.
    unexpanded: set[str] = field(default_factory=set)


async def fetch_thread(
    db: Database,
    page: PageByUris | PageNew,
    *,
    sort: Sort,
    depth: int,
    per_parent: int,
    budget: int,
) -> ThreadRows:
    """Everything below the post in one connection checkout and one thread hop.

    Statements: the top-level page, then one per reply level (each bounded by
    ``per_parent + 1`` replies per parent, served by ``comments_parent_<sort>``;
    stopping at the first empty level). Only comments that are shown become
    parents of the next level. ``budget`` caps the replies read in total (a
    huge thread at depth 100 must not become one huge response): parents left
    over when it runs out are reported in ``unexpanded``, earlier (higher
    ranked) subtrees first.
    """

    def work(conn: Connection[Row]) -> ThreadRows:
        more = False
        if isinstance(page, PageByUris):
            top = (
                conn.execute(_BY_URIS_SQL, {"uris": page.uris}, prepare=True).fetchall()
                if page.uris
                else []
            )
        else:
            params: dict[str, object] = {"post": page.post_uri, "limit": page.limit + 1}
            statement = _NEW_FIRST_SQL
            if page.after is not None:
                params["at"], params["uri"] = page.after
                statement = _NEW_AFTER_SQL
            top = conn.execute(statement, params, prepare=True).fetchall()
            if len(top) > page.limit:
                top, more = top[: page.limit], True
        rows = ThreadRows(top=top, more=more)
        level = [row["uri"] for row in top]
        if per_parent <= 0 or depth <= 0 or not level:
            return rows
        # Usual case: every level in one recursive statement. Only when it hits
        # the budget does the level-by-level loop below decide exactly which
        # subtrees fit.
        cap = budget + 1
        params = {
            "parents": level,
            "limit": per_parent + 1,
            "shown": per_parent,
            "depth": depth,
            "cap": cap,
        }
        tree = conn.execute(TREE_SQL[sort], params, prepare=True).fetchall()
        if len(tree) < cap:
            for reply in tree:
                rows.children.setdefault(reply["parent_uri"], []).append(reply)
            for siblings in rows.children.values():
                siblings.sort(key=lambda reply: reply["rn"])
            return rows
        remaining = budget
        if per_parent > 0:
            for _ in range(depth):
                if not level:
                    break
                fits = max(0, remaining // per_parent)
                rows.unexpanded.update(level[fits:])
                level = level[:fits]
                if not level:
                    break
                replies = conn.execute(
                    REPLIES_SQL[sort], {"parents": level, "limit": per_parent + 1}, prepare=True
                ).fetchall()
                level = []
                for reply in replies:
                    siblings = rows.children.setdefault(reply["parent_uri"], [])
                    siblings.append(reply)
                    if len(siblings) <= per_parent:
                        level.append(reply["uri"])
                remaining -= len(level)
        return rows

    return await db.run(work, transaction=False)


async def viewer_votes(db: Database, viewer_did: str, subject_uris: list[str]) -> dict[str, Row]:
    """The viewer's effective vote on each subject that has one, in one statement."""
    if not subject_uris:
        return {}
    rows = await db.fetch(_VOTES_SQL, {"viewer": viewer_did, "uris": subject_uris})
    return {row["subject_uri"]: row for row in rows}
