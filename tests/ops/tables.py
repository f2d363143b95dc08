"""Whole-database comparisons for the backup tests: every table, every row."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(conninfo: str, *, skip_columns: frozenset[str] = frozenset()) -> Snapshot:
    """Every table of the public schema as sorted rows (columns in a fixed order).

    ``skip_columns`` leaves out columns that legitimately differ between two
    instances that indexed the same events at different moments (``indexed_at``).
    """
    out: Snapshot = {}
    with psycopg.connect(conninfo) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        for table in tables:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s ORDER BY column_name",
                    (table,),
                )
                if r[0] not in skip_columns
            ]
            query = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table)
            )
            out[table] = sorted((tuple(row) for row in conn.execute(query)), key=repr)
    return out


def volatile_columns(conninfo: str) -> frozenset[str]:
    """Columns filled with the time of the write (``DEFAULT now()``), by name."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT DISTINCT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_default ILIKE '%%now()%%'"
        ).fetchall()
    return frozenset(r[0] for r in rows)


def differences(left: Snapshot, right: Snapshot) -> list[str]:
    """Readable differences (empty when equal)."""
    problems = []
    for table in sorted(set(left) | set(right)):
        a, b = left.get(table), right.get(table)
        if a is None or b is None:
            problems.append(f"{table}: only on the {'right' if a is None else 'left'}")
        elif a != b:
            only_a = [r for r in a if r not in b][:3]
            only_b = [r for r in b if r not in a][:3]
            problems.append(f"{table}: {len(a)} vs {len(b)} rows; left {only_a}; right {only_b}")
    return problems
