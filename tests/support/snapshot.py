"""Every indexed row and counter of a database, for comparing two runs row by row.

Columns that record when a row was written (``DEFAULT now()`` or set from
``now()``) differ between any two runs and are left out; everything that
comes from the events (records, revs, counters, ranks) is compared.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# Wall-clock bookkeeping, not derived from the stream.
VOLATILE = frozenset(
    {"indexed_at", "updated_at", "received_at", "started_at", "handle_checked_at", "verified_at"}
)
# Tables that are not indexed state: migrations bookkeeping, consumer sessions,
# instance secrets, and the response caches' helpers.
SKIP = frozenset({"schema_migrations", "ingest_sessions", "instance_secrets"})


def snapshot(
    conninfo: str, *, skip: frozenset[str] = frozenset()
) -> dict[str, list[tuple[Any, ...]]]:
    """{table: sorted rows} over every table in the public schema."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(conninfo) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        for table in tables:
            if table in SKIP or table in skip:
                continue
            columns = [
                r[0]
                for r in conn.execute(
                    """
                    SELECT column_name FROM information_schema.columns
                    WHERE table_schema = 'public' AND table_name = %s
                      AND (column_default IS NULL
                           OR (column_default NOT LIKE 'nextval%%'
                               AND column_default NOT LIKE 'now()%%'))
                    ORDER BY ordinal_position
                    """,
                    (table,),
                )
                if r[0] not in VOLATILE
            ]
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
                sql.Identifier(table),
            )
            rows = conn.execute(query).fetchall()
            out[table] = sorted(rows, key=lambda row: tuple("" if v is None else v for v in row))
    return out


def differences(
    expected: dict[str, list[tuple[Any, ...]]], actual: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    """Human-readable differences, empty when the two snapshots are equal."""
    problems: list[str] = []
    for table in sorted(set(expected) | set(actual)):
        want, got = set(expected.get(table, [])), set(actual.get(table, []))
        missing, extra = sorted(want - got, key=str), sorted(got - want, key=str)
        if missing or extra or len(expected.get(table, [])) != len(actual.get(table, [])):
            problems.append(
                f"{table}: {len(missing)} rows missing, {len(extra)} unexpected"
                f" (expected {len(want)}, got {len(got)}); first missing: {missing[:2]};"
                f" first unexpected: {extra[:2]}"
            )
    return problems
