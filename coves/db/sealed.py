"""The registry of sealed columns, and the SQL that walks them.

Every column holding a value sealed with ``coves.secrets.SecretBox`` is
declared once in :data:`SEALED_COLUMNS`: its table, the columns that name a
row, the sealed column, and how the row gives the associated data (the AAD
``context``) the value was sealed with. Code that seals or opens such a
value takes its context from the same entry (``column.context(row)``), so the
sealing code, ``coves rotate-key`` and the start-up key check can never
disagree about it.

To store a new sealed value: give the table a ``bytea`` column named
``sealed`` or ending in ``_sealed`` (a test fails for any such column that is
not registered) and add one :class:`SealedColumn` below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from coves.db._pool import Database, Row

BATCH = 500


@dataclass(frozen=True)
class SealedColumn:
    """One column of sealed values."""

    table: str
    key: tuple[str, ...]  # the columns that identify a row (its primary key)
    column: str  # the bytea column with the sealed value
    # The associated data a row's value is sealed with, from the row's key (and
    # ``context_columns``) values. Part of the ciphertext: never change it for
    # existing rows.
    context: Callable[[Mapping[str, Any]], str]
    context_columns: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def read_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.key, *self.context_columns)))


INSTANCE_SECRETS = SealedColumn(
    table="instance_secrets",
    key=("name",),
    column="sealed",
    context=lambda row: str(row["name"]),
)


def _community_account(column: str) -> SealedColumn:
    """A hosted community's PDS password or session token (``coves.hosting.credentials``)."""
    purpose = column.removesuffix("_sealed")
    return SealedColumn(
        table="community_accounts",
        key=("name",),
        column=column,
        context=lambda row: f"community_accounts:{row['name']}:{purpose}",
    )


COMMUNITY_PASSWORD = _community_account("password_sealed")
COMMUNITY_ACCESS = _community_account("access_sealed")
COMMUNITY_REFRESH = _community_account("refresh_sealed")

# Sign-ins in progress (PKCE verifier, DPoP key) and users' OAuth sessions
# (tokens, DPoP key): coves.oauth.store.
OAUTH_REQUESTS = SealedColumn(
    table="oauth_requests",
    key=("state",),
    column="secrets_sealed",
    context=lambda row: f"oauth_requests.secrets:{row['state']}",
)
OAUTH_SESSIONS = SealedColumn(
    table="oauth_sessions",
    key=("session_id",),
    column="secrets_sealed",
    context=lambda row: f"oauth_sessions.secrets:{row['session_id']}",
)

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    INSTANCE_SECRETS,
    OAUTH_REQUESTS,
    OAUTH_SESSIONS,
    COMMUNITY_PASSWORD,
    COMMUNITY_ACCESS,
    COMMUNITY_REFRESH,
)


def _select(entry: SealedColumn, after: Sequence[Any] | None, limit: int) -> sql.Composed:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in entry.read_columns)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in entry.key)
    where = sql.SQL("{} IS NOT NULL").format(sql.Identifier(entry.column))
    if after is not None:
        where = sql.SQL("{} AND ({}) > ({})").format(
            where, key, sql.SQL(", ").join(sql.Placeholder() * len(entry.key))
        )
    return sql.SQL("SELECT {}, {} AS sealed FROM {} WHERE {} ORDER BY {} LIMIT {}").format(
        columns,
        sql.Identifier(entry.column),
        sql.Identifier(entry.table),
        where,
        key,
        sql.Literal(limit),
    )


def iter_sealed(conn: psycopg.Connection[Row], entry: SealedColumn) -> Iterator[list[Row]]:
    """Every row with a sealed value, in key order, a batch at a time (keyset paging)."""
    after: list[Any] | None = None
    while True:
        rows = conn.execute(_select(entry, after, BATCH), after).fetchall()
        if not rows:
            return
        yield rows
        after = [rows[-1][c] for c in entry.key]
        if len(rows) < BATCH:
            return


def replace_sealed(
    conn: psycopg.Connection[Row], entry: SealedColumn, row: Row, new: bytes
) -> bool:
    """Swap in ``new`` only if the row still holds what was read (a concurrent
    writer's fresher value wins); True when replaced."""
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in entry.key
    )
    statement = sql.SQL("UPDATE {} SET {} = %s WHERE {} AND {} = %s").format(
        sql.Identifier(entry.table),
        sql.Identifier(entry.column),
        match,
        sql.Identifier(entry.column),
    )
    params = [new, *(row[c] for c in entry.key), row["sealed"]]
    return conn.execute(statement, params).rowcount == 1


async def key_census(db: Database, entry: SealedColumn) -> list[Row]:
    """Per key id found in the column: how many values, and one row to try opening.

    The key id is bytes 2-9 of the envelope (``coves.secrets``); values from
    before key ids report ``legacy``.
    """
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in entry.read_columns)
    column = sql.Identifier(entry.column)
    query = sql.SQL(
        """
        SELECT DISTINCT ON (key_id) key_id, count(*) OVER (PARTITION BY key_id) AS n,
               {columns}, {column} AS sealed
        FROM (
            SELECT *, CASE WHEN get_byte({column}, 0) = 2
                           THEN encode(substring({column} FROM 2 FOR 8), 'hex')
                           ELSE 'legacy' END AS key_id
            FROM {table} WHERE {column} IS NOT NULL AND length({column}) > 0
        ) AS values_by_key
        ORDER BY key_id
        """
    ).format(columns=columns, column=column, table=sql.Identifier(entry.table))

    def run(conn: psycopg.Connection[Row]) -> list[Row]:
        return conn.execute(query).fetchall()

    return await db.run(run, transaction=False)


def sealed_bytea_columns(conn: psycopg.Connection[Row]) -> list[tuple[str, str]]:
    """(table, column) of every bytea column named like a sealed one, for the registry test."""
    rows = conn.execute(
        """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'bytea'
          AND (column_name = 'sealed' OR column_name LIKE '%%\\_sealed')
        ORDER BY 1, 2
        """
    ).fetchall()
    return [(row["table_name"], row["column_name"]) for row in rows]
