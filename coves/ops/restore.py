"""``coves restore FILE``: check a backup, replace the database with it, bring the schema up.

Order matters for safety: the dump is checked against its manifest (size,
SHA-256) and its schema version against this Coves before anything is
touched; a running Coves on the same database is refused (restoring under a
live consumer would interleave its writes with the restore); a database
that holds data is only replaced with ``--yes``. ``pg_restore`` runs in a
single transaction, so a damaged archive restores nothing rather than half.
Then the pending migrations of this Coves are applied: restoring a backup
made by an older release onto a newer one is the supported direction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from coves.config import Settings
from coves.db import Database
from coves.db.migrate import load_migrations, migrate
from coves.db.queries import ops as q
from coves.ops.backup import BackupError, Manifest, verify
from coves.ops.pgtools import Tool, find_tool, run_tool

RESTORE_TIMEOUT_SECONDS = 12 * 3600.0


@dataclass
class RestoreResult:
    manifest: Manifest | None
    migrations_applied: list[str] = field(default_factory=list)
    schema_version: int | None = None
    cursors: list[dict[str, object]] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)


def check_compatible(manifest: Manifest) -> None:
    latest = max(m.version for m in load_migrations())
    if manifest.schema_version > latest:
        raise BackupError(
            f"the backup has schema version {manifest.schema_version}, newer than this Coves "
            f"knows ({latest}): restore it with the Coves {manifest.coves_version} that made it, "
            "or a newer one"
        )


async def restore(
    settings: Settings,
    dump: Path,
    *,
    replace: bool,
    force: bool = False,
    check_manifest: bool = True,
) -> RestoreResult:
    manifest: Manifest | None = None
    if check_manifest:
        manifest = await trio.to_thread.run_sync(verify, dump)
        check_compatible(manifest)
    elif not await trio.to_thread.run_sync(dump.is_file):
        raise BackupError(f"no such backup file: {dump}")
    min_major = int(manifest.pg_dump_version.split(".")[0]) if manifest else 0
    tool = await trio.to_thread.run_sync(
        lambda: find_tool("pg_restore", min_major, settings.pg_bin_dir)
    )
    if settings.database_url is None:
        return await _restore_embedded(settings, dump, manifest, tool, replace=replace)
    conninfo = settings.database_url.reveal()
    async with _database(settings, conninfo) as db:
        sessions = [s for s in await q.other_sessions(db) if s["application_name"] == "coves"]
        if sessions and not force:
            raise BackupError(
                f"{len(sessions)} connection(s) from a running Coves use this database; stop "
                "every instance first (systemctl stop coves), or pass --force"
            )
        await _refuse_to_overwrite(db, replace)
        await q.reset_public_schema(db)
    return await _load(settings, conninfo, dump, manifest, tool)


async def _restore_embedded(
    settings: Settings, dump: Path, manifest: Manifest | None, tool: Tool, *, replace: bool
) -> RestoreResult:
    from coves.db.embedded import EmbeddedPostgres
    from coves.ops.database import running_embedded

    if await trio.to_thread.run_sync(running_embedded, settings) is not None:
        raise BackupError(
            f"a Coves is running on {settings.data_dir} (its PostgreSQL answers); stop it "
            "first (systemctl stop coves), then restore"
        )
    server = EmbeddedPostgres(settings.data_dir)
    async with trio.open_nursery() as nursery:
        conninfo: str = await nursery.start(server.run)
        async with _database(settings, conninfo) as db:
            await _refuse_to_overwrite(db, replace)
        await trio.to_thread.run_sync(q.recreate_database, server.conninfo("postgres"), "coves")
        result = await _load(settings, conninfo, dump, manifest, tool)
        nursery.cancel_scope.cancel()
    return result


async def _refuse_to_overwrite(db: Database, replace: bool) -> None:
    tables = await q.table_names(db)
    if tables and not replace:
        raise BackupError(
            f"the target database is not empty ({len(tables)} tables); restoring replaces "
            "everything in it: add --yes to confirm (take a backup of it first if in doubt)"
        )


async def _load(
    settings: Settings, conninfo: str, dump: Path, manifest: Manifest | None, tool: Tool
) -> RestoreResult:
    await trio.to_thread.run_sync(
        lambda: run_tool(
            tool,
            ["--no-owner", "--no-acl", "--exit-on-error", "--single-transaction", str(dump)],
            conninfo,
            timeout=RESTORE_TIMEOUT_SECONDS,
        )
    )
    result = RestoreResult(manifest=manifest)
    async with _database(settings, conninfo) as db:
        applied = await migrate(db)
        result.migrations_applied = [f"{m.version:04d}_{m.name}" for m in applied]
        result.schema_version = await q.schema_version(db)
        result.cursors = [
            {"name": row["name"], "timeUs": row["time_us"]} for row in await q.cursors(db)
        ]
        result.tables = await q.row_counts(db)
    return result


@asynccontextmanager
async def _database(settings: Settings, conninfo: str) -> AsyncIterator[Database]:
    db = Database(
        conninfo,
        pool_size=1,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        application_name="coves-cli",
    )
    await db.probe()  # an unreachable server fails now, not after the pool's wait
    async with db:
        yield db
