"""``coves backup``: a consistent dump, its manifest, retention and the off-machine copy.

A backup is two files in the backup directory:

- ``coves-<UTC time>.dump``: ``pg_dump --format=custom`` of the whole
  database. pg_dump reads one snapshot, so the dump is consistent while
  Coves keeps serving and indexing (the stream cursor inside it matches the
  rows inside it, which is what lets a restored instance resume ingestion
  without loss);
- ``coves-<UTC time>.dump.json``: the manifest (SHA-256 and size of the
  dump, the schema version, Coves' and pg_dump's versions), checked by
  ``coves restore`` before it touches anything.

The dump is written under a temporary name and renamed once complete and
synced, so a crash never leaves a truncated file that looks like a backup.
Each run is recorded in the ``backups`` table; the newest good one is the
``coves_backup_last_success_timestamp_seconds`` metric an alert watches.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from coves import __version__
from coves.logs import get_logger
from coves.ops.pgtools import PgToolError, Tool, find_tool, run_tool

log = get_logger(__name__)

MANIFEST_FORMAT = "coves-backup/1"
# Tables that describe running processes, not data: each consumer's crash-detection
# session and each process's heartbeat. A restored database starts without them (its
# processes register afresh), so their rows are left out of dumps (the tables stay).
PROCESS_STATE_TABLES = ("ingest_sessions", "process_heartbeats")
NAME = re.compile(r"^coves-(\d{8}T\d{6}Z)(?:-(\d+))?\.dump$")
POST_COMMAND_TIMEOUT_SECONDS = 3600.0
DUMP_TIMEOUT_SECONDS = 6 * 3600.0


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class Manifest:
    file: str
    sha256: str
    size: int
    schema_version: int
    coves_version: str
    pg_dump_version: str
    created_at: datetime
    database: str  # "embedded" or "external"

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": MANIFEST_FORMAT,
                "file": self.file,
                "sha256": self.sha256,
                "size": self.size,
                "schemaVersion": self.schema_version,
                "covesVersion": self.coves_version,
                "pgDumpVersion": self.pg_dump_version,
                "createdAt": self.created_at.astimezone(UTC).isoformat(),
                "database": self.database,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = orjson.loads(raw)
            if data.get("format") != MANIFEST_FORMAT:
                raise BackupError(f"not a Coves backup manifest (format {data.get('format')!r})")
            return cls(
                file=str(data["file"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                schema_version=int(data["schemaVersion"]),
                coves_version=str(data["covesVersion"]),
                pg_dump_version=str(data["pgDumpVersion"]),
                created_at=datetime.fromisoformat(data["createdAt"]),
                database=str(data["database"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"the backup manifest is unreadable: {exc}") from exc


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(dump: Path) -> Manifest:
    """The dump's manifest, once the dump is found whole and unchanged."""
    if not dump.is_file():
        raise BackupError(f"no such backup file: {dump}")
    mpath = manifest_path(dump)
    if not mpath.is_file():
        raise BackupError(
            f"no manifest {mpath.name} beside the dump: it carries the checksum and schema "
            "version; copy it with the dump (or pass --no-manifest to restore unchecked)"
        )
    manifest = Manifest.from_json(mpath.read_bytes())
    size = dump.stat().st_size
    if size != manifest.size:
        raise BackupError(f"{dump.name} is {size} bytes; its manifest says {manifest.size}")
    actual = sha256_file(dump)
    if actual != manifest.sha256:
        raise BackupError(f"{dump.name} does not match its manifest's SHA-256: the file is damaged")
    return manifest


@dataclass
class BackupPlan:
    """Everything one run needs, resolved from settings and the command line."""

    conninfo: str
    dest_dir: Path
    database_kind: str
    retention_days: int
    post_command: str | None = None
    pg_bin_dir: Path | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class BackupResult:
    dump: Path
    manifest: Manifest
    pruned: list[Path] = field(default_factory=list)


def new_dump_path(dest_dir: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = dest_dir / f"coves-{stamp}.dump"
    n = 1
    while path.exists() or manifest_path(path).exists():
        path = dest_dir / f"coves-{stamp}-{n}.dump"
        n += 1
    return path


def dump_database(
    plan: BackupPlan, *, server_major: int, schema_version: int
) -> tuple[Path, Manifest]:
    """Blocking: pg_dump to a temporary file, checksum, rename, manifest."""
    tool = find_tool("pg_dump", server_major, plan.pg_bin_dir)
    plan.dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = new_dump_path(plan.dest_dir, plan.now)
    partial = final.with_name(final.name + ".partial")
    try:
        run_tool(
            tool,
            [
                "--format=custom",
                "--no-password",
                f"--file={partial}",
                *(f"--exclude-table-data={table}" for table in PROCESS_STATE_TABLES),
            ],
            plan.conninfo,
            timeout=DUMP_TIMEOUT_SECONDS,
        )
        partial.chmod(0o600)
        _fsync(partial)
        manifest = Manifest(
            file=final.name,
            sha256=sha256_file(partial),
            size=partial.stat().st_size,
            schema_version=schema_version,
            coves_version=__version__,
            pg_dump_version=tool.version,
            created_at=plan.now,
            database=plan.database_kind,
        )
        partial.rename(final)
        _write_atomically(manifest_path(final), manifest.to_json())
        _fsync_dir(plan.dest_dir)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return final, manifest


def run_post_command(command: str, dump: Path, manifest: Manifest) -> None:
    """Run the operator's copy-off-the-machine command; its failure fails the backup."""
    env = {
        **os.environ,
        "COVES_BACKUP_FILE": str(dump),
        "COVES_BACKUP_MANIFEST": str(manifest_path(dump)),
        "COVES_BACKUP_SHA256": manifest.sha256,
    }
    try:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=POST_COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupError(
            f"BACKUP_POST_COMMAND did not finish within {POST_COMMAND_TIMEOUT_SECONDS:.0f}s"
        ) from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-500:]
        raise BackupError(f"BACKUP_POST_COMMAND failed (exit {result.returncode}): {tail}")


def prune(dest_dir: Path, retention_days: int, now: datetime, keep: Path) -> list[Path]:
    """Delete backups older than the retention, never ``keep`` (the one just made).

    Only files named like our dumps are considered, so a backup directory
    shared with anything else is safe. The age is the manifest's creation
    time, or the file's when the manifest is missing.
    """
    cutoff = now - timedelta(days=retention_days)
    removed: list[Path] = []
    for dump in sorted(dest_dir.glob("coves-*.dump")):
        if dump == keep or not NAME.match(dump.name):
            continue
        created = _created_at(dump)
        if created >= cutoff:
            continue
        dump.unlink(missing_ok=True)
        manifest_path(dump).unlink(missing_ok=True)
        removed.append(dump)
        log.info("old backup removed", file=str(dump), created=created.isoformat())
    return removed


def _created_at(dump: Path) -> datetime:
    mpath = manifest_path(dump)
    try:
        return Manifest.from_json(mpath.read_bytes()).created_at
    except (OSError, BackupError):
        return datetime.fromtimestamp(dump.stat().st_mtime, UTC)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.rename(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "BackupError",
    "BackupPlan",
    "BackupResult",
    "Manifest",
    "PgToolError",
    "Tool",
    "dump_database",
    "manifest_path",
    "prune",
    "run_post_command",
    "verify",
]
