"""All SQL of the indexer: set-based statements over one batch.

Every function takes the batch's connection (already inside its one
transaction) and column lists; statements unnest the lists so a batch of
any size costs a fixed number of round trips. Array parameters are ``%b``
(binary): psycopg's text-format array dumper quotes element by element with
regular expressions, which cost more Python time than everything else. Post and comment
counters of rows the batch rewrote, or that were awaited, are recounted from rows; new
rows are inserted with their counts; other posts and comments take
the exact net change the batch's decisions made (which votes became or
stopped being effective, which comments became or stopped being live), so
replays, reordering and duplicates cannot skew them. Community counters
(``community_stats``) take new live posts as increments and are recounted
otherwise; aggregator counters are recounted for every key the batch touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

from coves.db import Database, Row

Conn = psycopg.Connection[Row]

# Serialises writers (the consumer and a `coves replay` against the same
# database) so rev gating reads and writes see a stable record_state.
_INGEST_LOCK_KEY = 0x636F766573  # "coves"
CURSOR_NAME = "jetstream"
DEAD_LETTER_KEEP = 10_000


def is_poison(exc: BaseException) -> bool:
    """A failure caused by the data itself: retrying the same batch would fail again."""
    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


def lock(conn: Conn, session: str | None = None) -> None:
    """Take the writers' lock, make this transaction's commit asynchronous, and
    check the consumer's session (see :func:`open_session`).

    An asynchronous commit returns before its WAL reaches disk; a crash of
    the database server can lose the last few hundred milliseconds of
    committed batches, never part of one. The cursor commits with the
    effects it covers, so it rolls back with them; what must not happen is a
    consumer carrying on from its in-memory position after such a crash
    (the pool reconnects silently, so it may never see an error). The
    session check makes the first batch after a crash fail with
    :data:`SESSION_LOST`, and the consumer resumes from the cursor that
    survived. Waiting for each batch's WAL flush instead cost about 6 ms a
    batch, done while the consumer could not index.
    """
    if session is None:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s), set_config('synchronous_commit', 'off', true)",
            (_INGEST_LOCK_KEY,),
        )
        return
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s), set_config('synchronous_commit', 'off', true),"
        " ingest_session_alive(%s)",
        (_INGEST_LOCK_KEY, session),
    )


# Raised by ingest_session_alive() (migration 0060) when the session is gone.
SESSION_LOST = "CV001"
SESSION_KEEP_DAYS = 7


def is_session_lost(exc: BaseException) -> bool:
    """The batch was refused because the server restarted since the cursor was read."""
    return isinstance(exc, psycopg.Error) and exc.sqlstate == SESSION_LOST


async def open_session(db: Database, token: str, name: str = CURSOR_NAME) -> int | None:
    """Register ``token`` for the source ``name`` and read its cursor, in one transaction.

    The token is written first: if the server crashes at any moment after
    this commits, crash recovery empties the (unlogged) table, so the token
    cannot outlive commits the crash took back, including ones this read saw.
    Sessions of consumers gone for a week are removed.
    """

    def work(conn: Conn) -> int | None:
        conn.execute(
            "DELETE FROM ingest_sessions WHERE started_at < now() - make_interval(days => %s)",
            (SESSION_KEEP_DAYS,),
        )
        conn.execute("INSERT INTO ingest_sessions (token, source) VALUES (%s, %s)", (token, name))
        row = conn.execute("SELECT time_us FROM ingest_cursor WHERE name = %s", (name,)).fetchone()
        return int(row["time_us"]) if row is not None else None

    return await db.run(work)


async def close_session(db: Database, token: str) -> None:
    await db.execute("DELETE FROM ingest_sessions WHERE token = %s", (token,))


# -- reads that decide what applies ------------------------------------------------


# Tables whose rows are keyed by record URI and carry the rev that wrote them.
REV_TABLES = frozenset(
    {
        "posts",
        "comments",
        "votes",
        "subscriptions",
        "blocks",
        "user_blocks",
        "aggregator_authorizations",
    }
)


def stored_revs(
    conn: Conn,
    dids: list[str],
    collections: list[str],
    rkeys: list[str],
    uris_by_table: dict[str, list[str]],
) -> Callable[[], tuple[dict[tuple[str, str, str], str], dict[str, str]]]:
    """The revs stored for the batch's records: (record_state rev by key, row rev by URI).

    Like every read here, it sends the query and returns a function that
    waits for the rows: in pipeline mode several reads issued before the
    first wait share one round trip.

    One primary-key probe per key: the LIMIT keeps the planner from turning
    the lookup into a hash join over a sequential scan of the whole table
    (which it chose once record_state held ~50 000 rows: 19 ms per batch and
    growing with the table)."""
    parts: list[str] = []
    params: list[Any] = []
    if dids:
        parts.append(
            """
            SELECT k.did, k.collection, k.rkey, NULL AS uri, rs.rev
            FROM unnest(%b::text[], %b::text[], %b::text[]) AS k(did, collection, rkey)
            CROSS JOIN LATERAL (
                SELECT rev FROM record_state r
                WHERE r.did = k.did AND r.collection = k.collection AND r.rkey = k.rkey
                LIMIT 1) rs
            """
        )
        params += [dids, collections, rkeys]
    for table, uris in sorted(uris_by_table.items()):
        assert table in REV_TABLES
        if uris:
            parts.append(
                f"""
                SELECT NULL, NULL, NULL, k.uri, t.rev FROM unnest(%b::text[]) AS k(uri)
                CROSS JOIN LATERAL (SELECT rev FROM {table} WHERE uri = k.uri LIMIT 1) t
                WHERE t.rev IS NOT NULL
                """
            )
            params.append(uris)
    if not parts:
        return lambda: ({}, {})
    cur = conn.execute(" UNION ALL ".join(parts), params)

    def wait() -> tuple[dict[tuple[str, str, str], str], dict[str, str]]:
        states: dict[tuple[str, str, str], str] = {}
        rows: dict[str, str] = {}
        for r in cur.fetchall():
            if r["uri"] is None:
                states[(r["did"], r["collection"], r["rkey"])] = r["rev"]
            else:
                rows[r["uri"]] = r["rev"]
        return states, rows

    return wait


def _noting_revs(rows: list[Row], revs: dict[str, str] | None) -> list[Row]:
    """Rows of a probe by URI, their ``rev`` noted in ``revs`` on the way (the
    stored revs of posts, comments and subscriptions come with the reads the
    batch makes of them anyway, instead of a second probe of the same rows)."""
    if revs is not None:
        for row in rows:
            if row["rev"] is not None:
                revs[row["uri"]] = row["rev"]
    return rows


def comment_threads(
    conn: Conn, uris: list[str], revs: dict[str, str] | None = None
) -> Callable[[], dict[str, tuple[str, str, bool]]]:
    """(root_uri, parent_uri, live) of stored comments; their revs go to ``revs``."""
    if not uris:
        return dict
    cur = conn.execute(
        "SELECT uri, root_uri, parent_uri, deleted_at IS NULL AS live, rev FROM comments"
        " WHERE uri = ANY(%b::text[])",
        (uris,),
    )
    return lambda: {
        r["uri"]: (r["root_uri"], r["parent_uri"], r["live"])
        for r in _noting_revs(cur.fetchall(), revs)
    }


_OLD_REFS = {
    "vote": ("votes", "voter_did", "subject_uri"),
    "subscription": ("subscriptions", "user_did", "community_did"),
    "post": ("posts", "community_did", "author_did"),
    "authorization": ("aggregator_authorizations", "community_did", "aggregator_did"),
}


def old_refs(
    conn: Conn, kind: str, uris: list[str], revs: dict[str, str] | None = None
) -> Callable[[], dict[str, tuple[str, str]]]:
    """What stored rows pointed at before this batch rewrites them (for recounts).

    One primary-key probe per URI (the LIMIT keeps it so whatever the table
    statistics say; ``uri = ANY(...)`` was planned as a sequential scan of
    subscriptions)."""
    if not uris:
        return dict
    table, a, b = _OLD_REFS[kind]
    cur = conn.execute(
        f"""
        SELECT k.uri, t.a, t.b, t.rev FROM unnest(%b::text[]) AS k(uri)
        CROSS JOIN LATERAL (SELECT {a} AS a, {b} AS b, rev FROM {table}
                            WHERE uri = k.uri LIMIT 1) t
        """,
        (uris,),
    )
    return lambda: {r["uri"]: (r["a"], r["b"]) for r in _noting_revs(cur.fetchall(), revs)}


def stored_posts(
    conn: Conn, uris: list[str], revs: dict[str, str] | None = None
) -> Callable[[], dict[str, tuple[str, str, bool]]]:
    """(community, author, live) of stored posts, before the batch writes any; their
    revs go to ``revs``."""
    if not uris:
        return dict
    cur = conn.execute(
        """
        SELECT k.uri, p.community_did, p.author_did, p.deleted_at IS NULL AS live, p.rev
        FROM unnest(%b::text[]) AS k(uri)
        CROSS JOIN LATERAL (SELECT community_did, author_did, deleted_at, rev FROM posts
                            WHERE uri = k.uri LIMIT 1) p
        """,
        (uris,),
    )
    return lambda: {
        r["uri"]: (r["community_did"], r["author_did"], r["live"])
        for r in _noting_revs(cur.fetchall(), revs)
    }


def content_rules(conn: Conn, dids: list[str]) -> Callable[[], dict[str, Any]]:
    """``contentRules`` of the stored profiles of communities that have any."""
    if not dids:
        return dict
    cur = conn.execute(
        """
        SELECT did, record->'contentRules' AS rules FROM communities
        WHERE did = ANY(%b::text[]) AND record ? 'contentRules'
        """,
        (dids,),
    )
    return lambda: {r["did"]: r["rules"] for r in cur.fetchall()}


def community_hosts(conn: Conn, dids: list[str]) -> dict[str, tuple[str, str]]:
    """(hosted_by, verification) of stored communities."""
    if not dids:
        return {}
    rows = conn.execute(
        "SELECT did, hosted_by, verification FROM communities WHERE did = ANY(%b::text[])",
        (dids,),
    ).fetchall()
    return {r["did"]: (r["hosted_by"], r["verification"]) for r in rows}


# -- writes --------------------------------------------------------------------------


def upsert_record_states(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: did, collection, rkey, rev, cid, deleted, time_us. Only newer revs land."""
    if not cols[0]:
        return
    conn.execute(
        """
        INSERT INTO record_state AS rs (did, collection, rkey, rev, cid, deleted, time_us)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                             %b::boolean[], %b::bigint[])
        ON CONFLICT (did, collection, rkey) DO UPDATE
            SET rev = EXCLUDED.rev, cid = EXCLUDED.cid, deleted = EXCLUDED.deleted,
                time_us = EXCLUDED.time_us, updated_at = now()
            WHERE rs.rev < EXCLUDED.rev
        """,
        cols,
    )


def ensure_users(conn: Conn, dids: Iterable[str]) -> None:
    ordered = sorted(set(dids))
    if ordered:
        conn.execute(
            "INSERT INTO users (did) SELECT unnest(%b::text[]) ON CONFLICT (did) DO NOTHING",
            (ordered,),
        )


def upsert_posts(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: uri, rkey, cid, community, author, title, content, facets, embed, labels,
    langs (json), record, created_at, edited_at, rev, and the upvotes, downvotes and
    comments a new row starts with (an existing row's counters are left alone)."""
    conn.execute(
        """
        INSERT INTO posts AS p (uri, rkey, cid, community_did, author_did, title, content,
                                facets, embed, labels, langs, record, created_at, ranked_at,
                                edited_at, deleted_at, rev, upvote_count, downvote_count, score,
                                comment_count, hot_rank, controversy_rank)
        SELECT u.uri, u.rkey, u.cid, u.community, u.author, u.title, u.content,
               u.facets::jsonb, u.embed::jsonb, u.labels::jsonb,
               CASE WHEN u.langs IS NULL THEN '{}'::text[]
                    ELSE ARRAY(SELECT jsonb_array_elements_text(u.langs::jsonb)) END,
               u.record::jsonb, u.created_at, least(u.created_at, now()), u.edited_at, NULL,
               u.rev, u.up, u.down, u.up - u.down, u.n,
               coves_hot_rank(u.up - u.down, least(u.created_at, now())),
               coves_controversy_rank(u.up, u.down)
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::timestamptz[], %b::timestamptz[], %b::text[], %b::int[], %b::int[],
                    %b::int[])
             AS u(uri, rkey, cid, community, author, title, content, facets, embed, labels,
                  langs, record, created_at, edited_at, rev, up, down, n)
        ON CONFLICT (uri) DO UPDATE SET
            cid = EXCLUDED.cid, rev = EXCLUDED.rev, author_did = EXCLUDED.author_did,
            title = EXCLUDED.title,
            content = EXCLUDED.content, facets = EXCLUDED.facets, embed = EXCLUDED.embed,
            labels = EXCLUDED.labels, langs = EXCLUDED.langs, record = EXCLUDED.record,
            created_at = EXCLUDED.created_at,
            ranked_at = least(EXCLUDED.created_at, p.indexed_at),
            edited_at = EXCLUDED.edited_at, deleted_at = NULL, withheld = NULL
        """,
        cols,
    )


def withhold_posts(conn: Conn, uris: list[str], times: list[datetime], reason: str) -> None:
    """Keep posts out of every view (deleted_at) and say why (withheld): their rows,
    revs included, stay, so an older version cannot come back."""
    if uris:
        conn.execute(
            """
            UPDATE posts p SET deleted_at = d.at, withheld = %b
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(uri, at)
            WHERE p.uri = d.uri
            """,
            (reason, uris, times),
        )


def delete_posts(conn: Conn, uris: list[str], times: list[datetime]) -> None:
    """Soft delete posts; a withheld post deleted by its author becomes a plain delete."""
    if uris:
        conn.execute(
            """
            UPDATE posts p SET deleted_at = d.at, withheld = NULL
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(uri, at)
            WHERE p.uri = d.uri AND (p.deleted_at IS NULL OR p.withheld IS NOT NULL)
            """,
            (uris, times),
        )


def soft_delete(conn: Conn, table: str, uris: list[str], times: list[datetime]) -> None:
    """Soft delete rows keyed by uri (posts, subscriptions, blocks, authorizations)."""
    assert table in {"posts", "subscriptions", "blocks", "user_blocks", "aggregator_authorizations"}
    if uris:
        conn.execute(
            f"""
            UPDATE {table} t SET deleted_at = d.at
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(uri, at)
            WHERE t.uri = d.uri AND t.deleted_at IS NULL
            """,
            (uris, times),
        )


def upsert_comments(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: uri, rkey, cid, commenter, root_uri, root_cid, parent_uri, parent_cid, content,
    facets, embed, labels, langs (json), record, created_at, edited_at, rev, and the
    upvotes, downvotes and replies a new row starts with (an existing row's counters
    are left alone)."""
    conn.execute(
        """
        INSERT INTO comments AS c (uri, rkey, cid, commenter_did, root_uri, root_cid, parent_uri,
                                   parent_cid, content, facets, embed, labels, langs, record,
                                   created_at, ranked_at, edited_at, deleted_at, rev,
                                   upvote_count, downvote_count, score, reply_count, hot_rank,
                                   controversy_rank)
        SELECT u.uri, u.rkey, u.cid, u.commenter, u.root_uri, u.root_cid, u.parent_uri,
               u.parent_cid, u.content, u.facets::jsonb, u.embed::jsonb, u.labels::jsonb,
               CASE WHEN u.langs IS NULL THEN '{}'::text[]
                    ELSE ARRAY(SELECT jsonb_array_elements_text(u.langs::jsonb)) END,
               u.record::jsonb, u.created_at, least(u.created_at, now()), u.edited_at, NULL,
               u.rev, u.up, u.down, u.up - u.down, u.n,
               coves_hot_rank(u.up - u.down, least(u.created_at, now())),
               coves_controversy_rank(u.up, u.down)
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[], %b::text[],
                    %b::int[], %b::int[], %b::int[])
             AS u(uri, rkey, cid, commenter, root_uri, root_cid, parent_uri, parent_cid,
                  content, facets, embed, labels, langs, record, created_at, edited_at, rev,
                  up, down, n)
        ON CONFLICT (uri) DO UPDATE SET
            cid = EXCLUDED.cid, rev = EXCLUDED.rev, root_uri = EXCLUDED.root_uri,
            root_cid = EXCLUDED.root_cid,
            parent_uri = EXCLUDED.parent_uri, parent_cid = EXCLUDED.parent_cid,
            content = EXCLUDED.content, facets = EXCLUDED.facets, embed = EXCLUDED.embed,
            labels = EXCLUDED.labels, langs = EXCLUDED.langs, record = EXCLUDED.record,
            created_at = EXCLUDED.created_at,
            ranked_at = least(EXCLUDED.created_at, c.indexed_at),
            edited_at = EXCLUDED.edited_at, deleted_at = NULL
        """,
        cols,
    )


def delete_comments(conn: Conn, uris: list[str], times: list[datetime]) -> None:
    """Soft delete keeping the row and its threading; the content goes."""
    if uris:
        conn.execute(
            """
            UPDATE comments c SET deleted_at = d.at, content = NULL, facets = NULL,
                   embed = NULL, labels = NULL, langs = '{}', record = NULL
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(uri, at)
            WHERE c.uri = d.uri AND c.deleted_at IS NULL
            """,
            (uris, times),
        )


def upsert_votes(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: uri, rkey, cid, rev, voter, subject_uri, subject_cid, direction, created_at,
    effective (decided by the caller, losers already cleared)."""
    conn.execute(
        """
        INSERT INTO votes AS v (uri, rkey, cid, rev, voter_did, subject_uri, subject_cid,
                                direction, created_at, effective)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                             %b::text[], %b::text[], %b::smallint[], %b::timestamptz[],
                             %b::boolean[])
        ON CONFLICT (uri) DO UPDATE SET
            cid = EXCLUDED.cid, rev = EXCLUDED.rev, subject_uri = EXCLUDED.subject_uri,
            subject_cid = EXCLUDED.subject_cid, direction = EXCLUDED.direction,
            created_at = EXCLUDED.created_at, deleted_at = NULL, effective = EXCLUDED.effective
        """,
        cols,
    )


def delete_votes(conn: Conn, uris: list[str], times: list[datetime]) -> None:
    if uris:
        conn.execute(
            """
            UPDATE votes v SET deleted_at = d.at, effective = false
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(uri, at)
            WHERE v.uri = d.uri AND v.deleted_at IS NULL
            """,
            (uris, times),
        )


def live_votes(
    conn: Conn, uris: list[str], voters: list[str], subjects: list[str]
) -> Callable[[], list[tuple[str, str, str, str, bool, int]]]:
    """(uri, voter, subject, rev, effective, direction) of live votes on the given
    (voter, subject) pairs and on the pairs the stored votes ``uris`` point at."""
    if not voters and not uris:
        return list
    # An effective vote is live; the live ones behind it have their own partial index.
    cur = conn.execute(
        """
        WITH p AS (
            SELECT p.voter, p.subject FROM unnest(%b::text[], %b::text[]) AS p(voter, subject)
            UNION
            SELECT o.voter_did, o.subject_uri FROM unnest(%b::text[]) AS k(uri)
            CROSS JOIN LATERAL (SELECT voter_did, subject_uri FROM votes
                                WHERE uri = k.uri LIMIT 1) o)
        SELECT v.uri, v.voter_did, v.subject_uri, v.rev, v.effective, v.direction
        FROM p CROSS JOIN LATERAL (
            SELECT * FROM votes WHERE voter_did = p.voter AND subject_uri = p.subject
                                  AND effective
            UNION ALL
            SELECT * FROM votes WHERE voter_did = p.voter AND subject_uri = p.subject
                                  AND deleted_at IS NULL AND NOT effective) v
        """,
        (voters, subjects, uris),
    )
    return lambda: [
        (r["uri"], r["voter_did"], r["subject_uri"], r["rev"], r["effective"], r["direction"])
        for r in cur.fetchall()
    ]


def set_effective(conn: Conn, uris: list[str], *, effective: bool) -> None:
    if uris:
        conn.execute(
            "UPDATE votes SET effective = %s WHERE uri = ANY(%b::text[])", (effective, uris)
        )


def upsert_subjects(conn: Conn, table: str, cols: Sequence[list[Any]]) -> None:
    """Subscriptions or blocks. cols: uri, user, rkey, community, visibility, cid, created_at,
    rev."""
    if table == "subscriptions":
        conn.execute(
            """
            INSERT INTO subscriptions AS s (uri, user_did, rkey, community_did,
                                            content_visibility, record_cid, created_at, rev)
            SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[],
                                 %b::smallint[], %b::text[], %b::timestamptz[], %b::text[])
            ON CONFLICT (uri) DO UPDATE SET
                community_did = EXCLUDED.community_did,
                content_visibility = EXCLUDED.content_visibility,
                record_cid = EXCLUDED.record_cid, created_at = EXCLUDED.created_at,
                deleted_at = NULL, rev = EXCLUDED.rev
            """,
            cols,
        )
        return
    assert table == "blocks"
    uri, user, rkey, community, _visibility, cid, created, rev = cols
    conn.execute(
        """
        INSERT INTO blocks AS b (uri, user_did, rkey, community_did, record_cid, created_at, rev)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                             %b::timestamptz[], %b::text[])
        ON CONFLICT (uri) DO UPDATE SET
            community_did = EXCLUDED.community_did, record_cid = EXCLUDED.record_cid,
            created_at = EXCLUDED.created_at, deleted_at = NULL, rev = EXCLUDED.rev
        """,
        (uri, user, rkey, community, cid, created, rev),
    )


def upsert_user_blocks(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: uri, blocker, rkey, subject, cid, created_at, rev."""
    conn.execute(
        """
        INSERT INTO user_blocks AS b (uri, blocker_did, rkey, subject_did, record_cid, created_at,
                                      rev)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                             %b::timestamptz[], %b::text[])
        ON CONFLICT (uri) DO UPDATE SET
            subject_did = EXCLUDED.subject_did, record_cid = EXCLUDED.record_cid,
            created_at = EXCLUDED.created_at, deleted_at = NULL, rev = EXCLUDED.rev
        """,
        cols,
    )


def upsert_communities(conn: Conn, cols: Sequence[list[Any]], keep: list[str]) -> None:
    """cols: did, name, display_name, description, description_facets, avatar, banner,
    created_by, hosted_by, visibility, allow_external_discovery, moderation_type,
    content_warnings (json), rules, categories (json), language, search_trigrams (json),
    record, record_cid, created_at, verification. ``keep``: DIDs whose stored
    verification state stands (same hostedBy as before)."""
    conn.execute(
        """
        INSERT INTO communities AS c (did, name, display_name, description, description_facets,
            avatar, banner, created_by, hosted_by, visibility, allow_external_discovery,
            moderation_type, content_warnings, rules, categories, language, search_trigrams,
            record, record_cid, created_at, verification, verified_at)
        SELECT u.did, u.name, u.display_name, u.description, u.description_facets::jsonb,
               u.avatar::jsonb, u.banner::jsonb, u.created_by, u.hosted_by, u.visibility,
               u.allow_external_discovery, u.moderation_type,
               ARRAY(SELECT jsonb_array_elements_text(u.content_warnings::jsonb)),
               u.rules::jsonb, ARRAY(SELECT jsonb_array_elements_text(u.categories::jsonb)),
               u.language, ARRAY(SELECT jsonb_array_elements_text(u.search_trigrams::jsonb)),
               u.record::jsonb, u.record_cid, u.created_at, u.verification,
               CASE WHEN u.verification = 'verified' THEN now() END
        FROM unnest(%(c0)b::text[], %(c1)b::text[], %(c2)b::text[], %(c3)b::text[],
                    %(c4)b::text[], %(c5)b::text[], %(c6)b::text[],
                    %(c7)b::text[], %(c8)b::text[], %(c9)b::text[],
                    %(c10)b::boolean[], %(c11)b::text[], %(c12)b::text[],
                    %(c13)b::text[], %(c14)b::text[], %(c15)b::text[],
                    %(c16)b::text[], %(c17)b::text[], %(c18)b::text[],
                    %(c19)b::timestamptz[], %(c20)b::text[])
             AS u(did, name, display_name, description, description_facets, avatar, banner,
                  created_by, hosted_by, visibility, allow_external_discovery, moderation_type,
                  content_warnings, rules, categories, language, search_trigrams, record,
                  record_cid, created_at, verification)
        ON CONFLICT (did) DO UPDATE SET
            name = EXCLUDED.name, display_name = EXCLUDED.display_name,
            description = EXCLUDED.description, description_facets = EXCLUDED.description_facets,
            avatar = EXCLUDED.avatar, banner = EXCLUDED.banner, created_by = EXCLUDED.created_by,
            hosted_by = EXCLUDED.hosted_by, visibility = EXCLUDED.visibility,
            allow_external_discovery = EXCLUDED.allow_external_discovery,
            moderation_type = EXCLUDED.moderation_type,
            content_warnings = EXCLUDED.content_warnings, rules = EXCLUDED.rules,
            categories = EXCLUDED.categories, language = EXCLUDED.language,
            search_trigrams = EXCLUDED.search_trigrams, record = EXCLUDED.record,
            record_cid = EXCLUDED.record_cid, created_at = EXCLUDED.created_at,
            updated_at = now(), deleted_at = NULL,
            verification = CASE WHEN c.did = ANY(%(keep)b::text[]) THEN c.verification
                                ELSE EXCLUDED.verification END,
            verified_at = CASE WHEN c.did = ANY(%(keep)b::text[]) THEN c.verified_at
                               ELSE EXCLUDED.verified_at END,
            verification_reason = CASE WHEN c.did = ANY(%(keep)b::text[])
                                       THEN c.verification_reason END
        """,
        {**{f"c{i}": col for i, col in enumerate(cols)}, "keep": keep},
    )


def delete_communities(conn: Conn, dids: list[str], times: list[datetime]) -> None:
    if dids:
        conn.execute(
            """
            UPDATE communities c SET deleted_at = d.at, updated_at = now()
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(did, at)
            WHERE c.did = d.did AND c.deleted_at IS NULL
            """,
            (dids, times),
        )


def upsert_aggregators(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: did, display_name, description, avatar, config_schema, source_url, maintainer,
    record, record_cid, created_at."""
    conn.execute(
        """
        INSERT INTO aggregators AS a (did, display_name, description, avatar, config_schema,
                                      source_url, maintainer_did, record, record_cid, created_at)
        SELECT u.did, u.display_name, u.description, u.avatar::jsonb, u.config_schema::jsonb,
               u.source_url, u.maintainer, u.record::jsonb, u.record_cid, u.created_at
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::text[], %b::text[], %b::text[], %b::timestamptz[])
             AS u(did, display_name, description, avatar, config_schema, source_url,
                  maintainer, record, record_cid, created_at)
        ON CONFLICT (did) DO UPDATE SET
            display_name = EXCLUDED.display_name, description = EXCLUDED.description,
            avatar = EXCLUDED.avatar, config_schema = EXCLUDED.config_schema,
            source_url = EXCLUDED.source_url, maintainer_did = EXCLUDED.maintainer_did,
            record = EXCLUDED.record, record_cid = EXCLUDED.record_cid,
            created_at = EXCLUDED.created_at, deleted_at = NULL
        """,
        cols,
    )


def delete_aggregators(conn: Conn, dids: list[str], times: list[datetime]) -> None:
    if dids:
        conn.execute(
            """
            UPDATE aggregators a SET deleted_at = d.at
            FROM unnest(%b::text[], %b::timestamptz[]) AS d(did, at)
            WHERE a.did = d.did AND a.deleted_at IS NULL
            """,
            (dids, times),
        )


def upsert_authorizations(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: uri, community, rkey, aggregator, enabled, config, created_by, disabled_at,
    disabled_by, record_cid, created_at, rev."""
    conn.execute(
        """
        INSERT INTO aggregator_authorizations AS a (uri, community_did, rkey, aggregator_did,
            enabled, config, created_by, disabled_at, disabled_by, record_cid, created_at, rev)
        SELECT u.uri, u.community, u.rkey, u.aggregator, u.enabled, u.config::jsonb,
               u.created_by, u.disabled_at, u.disabled_by, u.record_cid, u.created_at, u.rev
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::boolean[], %b::text[],
                    %b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::timestamptz[],
                    %b::text[])
             AS u(uri, community, rkey, aggregator, enabled, config, created_by, disabled_at,
                  disabled_by, record_cid, created_at, rev)
        ON CONFLICT (uri) DO UPDATE SET rev = EXCLUDED.rev,
            aggregator_did = EXCLUDED.aggregator_did, enabled = EXCLUDED.enabled,
            config = EXCLUDED.config, created_by = EXCLUDED.created_by,
            disabled_at = EXCLUDED.disabled_at, disabled_by = EXCLUDED.disabled_by,
            record_cid = EXCLUDED.record_cid, created_at = EXCLUDED.created_at,
            deleted_at = NULL
        """,
        cols,
    )


def update_actor_profiles(conn: Conn, cols: Sequence[list[Any]]) -> None:
    """cols: did, display_name, description, avatar, banner, created_at (all NULL clears:
    a delete)."""
    conn.execute(
        """
        UPDATE users u SET display_name = p.display_name, description = p.description,
               avatar = p.avatar::jsonb, banner = p.banner::jsonb,
               profile_created_at = p.created_at, updated_at = now()
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                    %b::timestamptz[])
             AS p(did, display_name, description, avatar, banner, created_at)
        WHERE u.did = p.did
        """,
        cols,
    )


def apply_identities(conn: Conn, dids: list[str], times: list[int]) -> list[str]:
    """Newer identity events make the account due for handle verification now.

    The handle in the event is not stored: anyone's PDS can claim any handle, so
    the handle backfill verifies it both ways first (nurseries/handles.py); until
    then the last verified handle stays. Returns the DIDs the events concerned.
    """
    if not dids:
        return []
    rows = conn.execute(
        """
        UPDATE users u SET identity_time_us = e.time_us, handle_retry_at = now(),
               handle_attempts = 0, updated_at = now()
        FROM unnest(%b::text[], %b::bigint[]) AS e(did, time_us)
        WHERE u.did = e.did AND u.identity_time_us < e.time_us
        RETURNING u.did
        """,
        (dids, times),
    ).fetchall()
    return [r["did"] for r in rows]


def apply_accounts(
    conn: Conn, dids: list[str], active: list[bool], statuses: list[str | None], times: list[int]
) -> list[str]:
    """Newer account events set active/status (ordered by account_time_us)."""
    if not dids:
        return []
    rows = conn.execute(
        """
        UPDATE users u SET active = e.active, account_status = e.status,
               account_time_us = e.time_us, updated_at = now()
        FROM unnest(%b::text[], %b::boolean[], %b::text[], %b::bigint[])
             AS e(did, active, status, time_us)
        WHERE u.did = e.did AND u.account_time_us < e.time_us
        RETURNING u.did
        """,
        (dids, active, statuses, times),
    ).fetchall()
    return [r["did"] for r in rows]


# -- recounts -------------------------------------------------------------------------


def recount_posts(conn: Conn, uris: list[str]) -> None:
    """Votes, score, whole-thread comment_count and ranks of the given posts."""
    if uris:
        conn.execute(
            """
            UPDATE posts p SET upvote_count = v.up, downvote_count = v.down,
                   score = v.up - v.down, comment_count = c.n,
                   hot_rank = coves_hot_rank(v.up - v.down, p.ranked_at),
                   controversy_rank = coves_controversy_rank(v.up, v.down)
            FROM (SELECT DISTINCT unnest(%b::text[]) AS uri) k
            CROSS JOIN LATERAL (
                SELECT count(*) FILTER (WHERE direction = 1)::int AS up,
                       count(*) FILTER (WHERE direction = -1)::int AS down
                FROM votes WHERE subject_uri = k.uri AND effective) v
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS n FROM comments
                WHERE root_uri = k.uri AND deleted_at IS NULL) c
            WHERE p.uri = k.uri
              AND (p.upvote_count, p.downvote_count, p.comment_count, p.hot_rank)
                  IS DISTINCT FROM (v.up, v.down, c.n, coves_hot_rank(v.up - v.down, p.ranked_at))
            """,
            (uris,),
        )


def recount_comments(conn: Conn, uris: list[str]) -> None:
    """Votes, score, direct reply_count and ranks of the given comments."""
    if uris:
        conn.execute(
            """
            UPDATE comments cm SET upvote_count = v.up, downvote_count = v.down,
                   score = v.up - v.down, reply_count = r.n,
                   hot_rank = coves_hot_rank(v.up - v.down, cm.ranked_at),
                   controversy_rank = coves_controversy_rank(v.up, v.down)
            FROM (SELECT DISTINCT unnest(%b::text[]) AS uri) k
            CROSS JOIN LATERAL (
                SELECT count(*) FILTER (WHERE direction = 1)::int AS up,
                       count(*) FILTER (WHERE direction = -1)::int AS down
                FROM votes WHERE subject_uri = k.uri AND effective) v
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS n FROM comments
                WHERE parent_uri = k.uri AND deleted_at IS NULL) r
            WHERE cm.uri = k.uri
              AND (cm.upvote_count, cm.downvote_count, cm.reply_count, cm.hot_rank)
                  IS DISTINCT FROM (v.up, v.down, r.n, coves_hot_rank(v.up - v.down, cm.ranked_at))
            """,
            (uris,),
        )


_CHILD_COUNT = {"posts": "comment_count", "comments": "reply_count"}


def add_counts(conn: Conn, table: str, cols: Sequence[list[Any]]) -> None:
    """cols: uri, upvotes, downvotes, children: net changes (from the batch's
    decisions) added to the stored counters of ``posts`` (children: comments in
    the thread) or ``comments`` (children: direct replies), with the ranks that
    follow from them. A change for a row that does not exist yet lists its URI
    in ``awaited_subjects``, so the row is recounted when it arrives."""
    if cols[0]:
        children = _CHILD_COUNT[table]
        conn.execute(
            f"""
            WITH d AS (
                SELECT * FROM unnest(%b::text[], %b::int[], %b::int[], %b::int[])
                    AS d(uri, up, down, n)),
            hit AS (
                UPDATE {table} t SET upvote_count = t.upvote_count + d.up,
                       downvote_count = t.downvote_count + d.down,
                       score = t.score + d.up - d.down, {children} = t.{children} + d.n,
                       hot_rank = coves_hot_rank(t.score + d.up - d.down, t.ranked_at),
                       controversy_rank = coves_controversy_rank(t.upvote_count + d.up,
                                                                 t.downvote_count + d.down)
                FROM d WHERE t.uri = d.uri
                RETURNING t.uri)
            INSERT INTO awaited_subjects (uri)
            SELECT d.uri FROM d WHERE NOT EXISTS (SELECT 1 FROM hit WHERE hit.uri = d.uri)
            ON CONFLICT (uri) DO NOTHING
            """,
            cols,
        )


def awaited(conn: Conn, uris: list[str]) -> Callable[[], set[str]]:
    """Which of ``uris`` were referenced (voted on, replied to) before they existed."""
    if not uris:
        return set
    cur = conn.execute(
        """
        SELECT k.uri FROM unnest(%b::text[]) AS k(uri)
        WHERE EXISTS (SELECT 1 FROM awaited_subjects a WHERE a.uri = k.uri)
        """,
        (uris,),
    )
    return lambda: {r["uri"] for r in cur.fetchall()}


def forget_awaited(conn: Conn, uris: list[str]) -> None:
    """Rows that arrived and were recounted are no longer awaited."""
    if uris:
        conn.execute("DELETE FROM awaited_subjects WHERE uri = ANY(%b::text[])", (uris,))


def recount_subscribers(conn: Conn, dids: list[str]) -> None:
    """Distinct live subscribers of each community (its stats row made if missing)."""
    if dids:
        conn.execute(
            """
            INSERT INTO community_stats AS cs (did, subscriber_count)
            SELECT k.did, s.n FROM unnest(%b::text[]) AS k(did)
            CROSS JOIN LATERAL (
                SELECT count(DISTINCT user_did)::int AS n FROM subscriptions
                WHERE community_did = k.did AND deleted_at IS NULL) s
            ON CONFLICT (did) DO UPDATE SET subscriber_count = EXCLUDED.subscriber_count
                WHERE cs.subscriber_count <> EXCLUDED.subscriber_count
            """,
            (dids,),
        )


def recount_community_posts(conn: Conn, dids: list[str]) -> None:
    """post_count and last_post_at (newest ranked_at) of live posts, from the rows."""
    if dids:
        conn.execute(
            """
            INSERT INTO community_stats AS cs (did, post_count, last_post_at)
            SELECT k.did, p.n, p.last FROM unnest(%b::text[]) AS k(did)
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS n, max(ranked_at) AS last FROM posts
                WHERE community_did = k.did AND deleted_at IS NULL) p
            ON CONFLICT (did) DO UPDATE SET post_count = EXCLUDED.post_count,
                                            last_post_at = EXCLUDED.last_post_at
                WHERE (cs.post_count, cs.last_post_at)
                      IS DISTINCT FROM (EXCLUDED.post_count, EXCLUDED.last_post_at)
            """,
            (dids,),
        )


def add_community_posts(conn: Conn, dids: list[str], uris: list[str]) -> None:
    """Posts (already written) that became live: each adds one to its community's
    post_count and may raise last_post_at (the newest ranked_at of live posts)."""
    if dids:
        conn.execute(
            """
            INSERT INTO community_stats AS cs (did, post_count, last_post_at)
            SELECT u.did, count(*)::int, max(p.ranked_at)
            FROM unnest(%b::text[], %b::text[]) AS u(did, uri)
            CROSS JOIN LATERAL (SELECT ranked_at FROM posts WHERE uri = u.uri LIMIT 1) p
            GROUP BY u.did
            ON CONFLICT (did) DO UPDATE SET
                post_count = cs.post_count + EXCLUDED.post_count,
                last_post_at = greatest(cs.last_post_at, EXCLUDED.last_post_at)
            """,
            (dids, uris),
        )


def recount_aggregators(conn: Conn, dids: list[str]) -> None:
    if dids:
        conn.execute(
            """
            UPDATE aggregators a SET communities_using = au.n, posts_created = p.n
            FROM (SELECT did FROM aggregators WHERE did = ANY(%b::text[])) k
            CROSS JOIN LATERAL (
                SELECT count(DISTINCT community_did)::int AS n FROM aggregator_authorizations
                WHERE aggregator_did = k.did AND enabled AND deleted_at IS NULL) au
            CROSS JOIN LATERAL (
                SELECT count(*)::int AS n FROM posts
                WHERE author_did = k.did AND deleted_at IS NULL) p
            WHERE a.did = k.did
            """,
            (dids,),
        )


# -- bookkeeping ---------------------------------------------------------------------


def insert_dead_letters(conn: Conn, cols: Sequence[list[Any]], keep: int | None = None) -> None:
    """cols: reason, detail, did, collection, rkey, time_us, raw. Trims to the newest ``keep``."""
    if not cols[0]:
        return
    conn.execute(
        """
        INSERT INTO dead_letters (reason, detail, did, collection, rkey, time_us, raw)
        SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                             %b::bigint[], %b::text[])
        """,
        cols,
    )
    conn.execute(
        """
        DELETE FROM dead_letters WHERE id <= (
            SELECT id FROM dead_letters ORDER BY id DESC OFFSET %s LIMIT 1)
        """,
        (DEAD_LETTER_KEEP if keep is None else keep,),
    )


def save_cursor(conn: Conn, time_us: int, name: str = CURSOR_NAME) -> None:
    conn.execute(
        """
        INSERT INTO ingest_cursor AS c (name, time_us) VALUES (%s, %s)
        ON CONFLICT (name) DO UPDATE SET time_us = greatest(c.time_us, EXCLUDED.time_us),
                                         updated_at = now()
        """,
        (name, time_us),
    )


async def load_cursor(db: Database, name: str = CURSOR_NAME) -> int | None:
    value = await db.fetchval("SELECT time_us FROM ingest_cursor WHERE name = %s", (name,))
    return int(value) if value is not None else None


async def live_record_uris(db: Database, did: str) -> list[str]:
    """URIs of the live records of ``did``'s repository that the index holds.

    For a ``#sync`` (the repo was replaced): whatever is here and no longer in
    the repository is deleted. A primary-key range per table (the URI prefix).
    """
    low, high = f"at://{did}/", f"at://{did}0"  # '0' sorts right after '/'
    parts = [
        f"SELECT uri FROM {table} WHERE uri >= %(low)s AND uri < %(high)s AND deleted_at IS NULL"
        for table in sorted(REV_TABLES)
    ]
    parts.append(
        "SELECT 'at://' || did || '/' || collection || '/' || rkey FROM record_state"
        " WHERE did = %(did)s AND NOT deleted"
    )
    rows = await db.fetch(" UNION ".join(parts), {"low": low, "high": high, "did": did})
    return [next(iter(row.values())) for row in rows]
