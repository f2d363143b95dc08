"""Schema migrations: numbered SQL files shipped in the package.

Applied in order under a PostgreSQL advisory lock (so two starting
processes cannot race), each in its own transaction, and recorded with a
SHA-256 of its text. Editing a migration that already ran is refused:
the database would silently disagree with the code otherwise.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from coves.db._pool import Database, Row
from coves.logs import get_logger

log = get_logger(__name__)

LOCK_KEY = 0x636F766573  # "coves"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str = "coves.db.migrations") -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _applied(conn: psycopg.Connection[Row], migrations: list[Migration]) -> dict[int, Any]:
    """The applied migrations by version, after refusing unknown or edited ones."""
    applied: dict[int, Any] = {
        row["version"]: row
        for row in conn.execute("SELECT version, name, checksum FROM schema_migrations")
    }
    known = {m.version for m in migrations}
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        raise MigrationError(
            f"database has migrations this code does not know: {unknown}; "
            "is this an older Coves than the one that migrated it?"
        )
    for migration in migrations:
        row = applied.get(migration.version)
        if row is not None and row["checksum"] != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was edited after "
                "it was applied; add a new migration instead"
            )
    return applied


def pending_migrations(
    conn: psycopg.Connection[Row], migrations: list[Migration]
) -> list[Migration]:
    """Migrations not yet applied (all of them on an empty database); no lock, no writes."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS ok").fetchone()
    if exists is None or not exists["ok"]:
        return list(migrations)
    applied = _applied(conn, migrations)
    return [m for m in migrations if m.version not in applied]


def apply_migrations(conn: psycopg.Connection[Row], migrations: list[Migration]) -> list[Migration]:
    """Apply pending migrations on ``conn`` (autocommit mode); return those applied."""
    _lock(conn)
    try:
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = _applied(conn, migrations)
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            with conn.transaction():
                # Index builds on a big database outlive the request timeout.
                conn.execute("SET LOCAL statement_timeout = 0")
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            done.append(migration)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _lock(conn: psycopg.Connection[Row], wait_s: float = 600.0) -> None:
    """Take the migration lock, polling so the wait is not a timed-out statement."""
    deadline = time.monotonic() + wait_s
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LOCK_KEY,)).fetchone()
        if row is not None and row["ok"]:
            return
        if time.monotonic() > deadline:
            raise MigrationError("another process held the migration lock for too long")
        time.sleep(0.2)


async def migrate(db: Database, migrations: list[Migration] | None = None) -> list[Migration]:
    todo = load_migrations() if migrations is None else migrations
    done = await db.run(lambda conn: apply_migrations(conn, todo), transaction=False)
    for migration in done:
        log.info("migration applied", version=migration.version, name=migration.name)
    return done


async def require_current_schema(db: Database, migrations: list[Migration] | None = None) -> None:
    """Refuse to go on with a schema older (or newer) than this code.

    ``coves serve --no-migrate`` on an unmigrated database would otherwise
    report healthy while every read fails.
    """
    todo = load_migrations() if migrations is None else migrations
    pending = await db.run(lambda conn: pending_migrations(conn, todo), transaction=False)
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        raise MigrationError(
            f"the database schema is not current: {len(pending)} migration(s) pending "
            f"({names}{more}); run `coves migrate`, or start without --no-migrate"
        )
