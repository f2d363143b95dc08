"""The ``coves backup`` and ``coves restore`` commands (the work is in backup.py, restore.py)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import trio

from coves import clock
from coves.config import Settings
from coves.db.queries import ops as q
from coves.logs import get_logger
from coves.ops.backup import (
    BackupError,
    BackupPlan,
    BackupResult,
    dump_database,
    prune,
    run_post_command,
)
from coves.ops.problems import OPERATOR_ERRORS, run_command

log = get_logger(__name__)


def configure_backup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        type=Path,
        help="directory for the dump (default: BACKUP_DIR, else DATA_DIR/backups)",
    )


def configure_restore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a coves-*.dump (its .json manifest beside it)")
    parser.add_argument(
        "--yes", action="store_true", help="replace a database that already holds data"
    )
    parser.add_argument(
        "--force", action="store_true", help="restore even while Coves instances are connected"
    )
    parser.add_argument(
        "--no-manifest",
        action="store_true",
        help="restore a dump without its manifest (no checksum or schema check)",
    )


async def backup(settings: Settings, dest_dir: Path) -> BackupResult:
    """One backup run, recorded in the ``backups`` table whether it succeeds or not."""
    from coves.ops.database import operator_database

    async with operator_database(settings, pool_size=1) as (db, attached):
        started = clock.utcnow()
        dump: Path | None = None
        version = await q.schema_version(db)
        if version is None:
            raise BackupError("the database has no Coves schema yet; nothing to back up")
        # A database not yet migrated to this Coves has no backups table: still dump it.
        recorded = await q.has_table(db, "backups")
        try:
            major = await q.server_version_num(db) // 10_000
            plan = BackupPlan(
                conninfo=attached.conninfo,
                dest_dir=dest_dir,
                database_kind="external" if attached.kind == "external" else "embedded",
                retention_days=settings.backup_retention_days,
                post_command=(
                    settings.backup_post_command.reveal() if settings.backup_post_command else None
                ),
                pg_bin_dir=settings.pg_bin_dir,
                now=started,
            )
            made, manifest = await trio.to_thread.run_sync(
                lambda: dump_database(plan, server_major=major, schema_version=version)
            )
            dump = made
            if plan.post_command:
                await trio.to_thread.run_sync(run_post_command, plan.post_command, made, manifest)
            pruned = await trio.to_thread.run_sync(
                prune, dest_dir, plan.retention_days, started, made
            )
        except OPERATOR_ERRORS as exc:
            log.error("backup failed", error=str(exc), file=str(dump) if dump else None)
            if recorded:
                # Best effort: the database may be what failed; the exit status says so anyway.
                with trio.move_on_after(10), contextlib.suppress(Exception):
                    await q.record_backup(
                        db,
                        started_at=started,
                        ok=False,
                        file=str(dump) if dump else None,
                        size_bytes=None,
                        sha256=None,
                        schema_version=None,
                        error=str(exc)[:1000],
                    )
            raise
        if not recorded:
            log.warning("backup not recorded: the schema predates it; run coves migrate")
            return BackupResult(made, manifest, pruned)
        await q.record_backup(
            db,
            started_at=started,
            ok=True,
            file=str(made),
            size_bytes=manifest.size,
            sha256=manifest.sha256,
            schema_version=manifest.schema_version,
            error=None,
        )
        log.info("backup written", file=str(made), bytes=manifest.size, pruned=len(pruned))
        return BackupResult(made, manifest, pruned)


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    dest = (args.to or settings.effective_backup_dir).expanduser().resolve()
    result = run_command("backup", lambda: backup(settings, dest))
    m = result.manifest
    print(f"backup:  {result.dump}")
    print(f"size:    {m.size:,} bytes   sha256 {m.sha256}")
    print(f"schema:  {m.schema_version}   pg_dump {m.pg_dump_version}")
    if result.pruned:
        print(
            f"removed {len(result.pruned)} backup(s) older than "
            f"{settings.backup_retention_days} days"
        )
    return 0


def run_restore(settings: Settings, args: argparse.Namespace) -> int:
    from coves.ops.restore import restore

    result = run_command(
        "restore",
        lambda: restore(
            settings,
            args.file.expanduser().resolve(),
            replace=args.yes,
            force=args.force,
            check_manifest=not args.no_manifest,
        ),
    )
    if result.manifest is not None:
        made = result.manifest.created_at.isoformat(timespec="seconds")
        print(f"restored {args.file.name} (made {made} by Coves {result.manifest.coves_version})")
    else:
        print(f"restored {args.file.name} (unchecked: no manifest)")
    if result.migrations_applied:
        print(f"migrations applied: {', '.join(result.migrations_applied)}")
    print(f"schema version: {result.schema_version}")
    print(f"rows: {sum(result.tables.values()):,} in {len(result.tables)} tables")
    for cursor in result.cursors:
        print(
            f"cursor {cursor['name']}: {cursor['timeUs']} "
            "(ingestion resumes from here when Coves starts)"
        )
    return 0


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["backup"] = (
        "dump the database (custom format, checksummed manifest), prune, copy off the machine",
        configure_backup,
        run_backup,
    )
    EXTRA_COMMANDS["restore"] = (
        "replace the database with a backup, then apply pending migrations",
        configure_restore,
        run_restore,
    )


_register()
