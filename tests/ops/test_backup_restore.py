"""coves backup / coves restore against an external PostgreSQL: the round trip and every refusal."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg
import pytest
import trio

from coves import cli
from coves.config import Settings, test_settings
from coves.db.migrate import apply_migrations, load_migrations
from coves.ops.backup import (
    PROCESS_STATE_TABLES,
    BackupError,
    Manifest,
    manifest_path,
    prune,
    sha256_file,
)
from coves.ops.backup_cli import backup
from coves.ops.pgtools import PgToolError, find_tool
from coves.ops.restore import restore
from coves.secrets import Secret
from tests.ops import populate
from tests.ops.conftest import database_url
from tests.ops.tables import differences, snapshot
from tests.support.database import TestPostgres

LATEST = max(m.version for m in load_migrations())


def _data(snap: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    """A snapshot without the process-state tables, which dumps leave empty."""
    return {table: rows for table, rows in snap.items() if table not in PROCESS_STATE_TABLES}


def _settings(pg: TestPostgres, name: str, **extra: object) -> Settings:
    return test_settings(database_url=Secret(database_url(pg, name)), **extra)


async def _populated(pg: TestPostgres, count: int = 300) -> str:
    name = await trio.to_thread.run_sync(pg.create_database)
    await populate.index(pg.conninfo(name), populate.events(count))
    return name


def _backup_rows(pg: TestPostgres, name: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pg.conninfo(name)) as conn:
        return conn.execute(
            "SELECT ok, file, size_bytes, sha256, schema_version, error FROM backups ORDER BY id"
        ).fetchall()


async def test_round_trip_into_an_empty_database(pg: TestPostgres, scratch: Path) -> None:
    source = await _populated(pg)
    target = await trio.to_thread.run_sync(pg.create_empty_database)
    dest = scratch / "backups"
    try:
        before = await trio.to_thread.run_sync(snapshot, pg.conninfo(source))
        with trio.fail_after(60):
            result = await backup(_settings(pg, source), dest)
        dump, manifest = result.dump, result.manifest
        assert dump.parent == dest and dump.name.startswith("coves-") and dump.suffix == ".dump"
        assert oct(dump.stat().st_mode & 0o777) == "0o600"
        assert manifest.sha256 == sha256_file(dump) and manifest.size == dump.stat().st_size
        assert manifest.schema_version == LATEST and manifest.database == "external"
        assert Manifest.from_json(manifest_path(dump).read_bytes()) == manifest
        [(ok, file, size, sha, schema, error)] = _backup_rows(pg, source)
        assert (ok, file, size, sha, schema, error) == (
            True,
            str(dump),
            manifest.size,
            manifest.sha256,
            LATEST,
            None,
        )

        with trio.fail_after(60):
            restored = await restore(_settings(pg, target), dump, replace=False)
        assert restored.migrations_applied == []  # same Coves: nothing pending
        assert restored.schema_version == LATEST
        after = await trio.to_thread.run_sync(snapshot, pg.conninfo(target))
        assert after["posts"] and after["votes"] and after["comments"] and after["dead_letters"]
        assert after["ingest_cursor"]
        assert differences(_data(before), _data(after)) == []
        assert all(after[table] == [] for table in PROCESS_STATE_TABLES if table in after)

        # The target now holds data: replacing it needs --yes.
        with trio.fail_after(30), pytest.raises(BackupError, match=r"not empty.*--yes"):
            await restore(_settings(pg, target), dump, replace=False)
        # A running Coves on it (application "coves") is refused unless forced.
        with psycopg.connect(pg.conninfo(target), application_name="coves"):
            with trio.fail_after(30), pytest.raises(BackupError, match="stop every instance"):
                await restore(_settings(pg, target), dump, replace=True)
            with trio.fail_after(60):
                await restore(_settings(pg, target), dump, replace=True, force=True)
        again = await trio.to_thread.run_sync(snapshot, pg.conninfo(target))
        assert differences(_data(before), _data(again)) == []
    finally:
        for name in (source, target):
            await trio.to_thread.run_sync(pg.drop_database, name)


async def test_restore_onto_a_newer_coves_applies_the_pending_migrations(
    pg: TestPostgres, scratch: Path
) -> None:
    older = [m for m in load_migrations() if m.version < LATEST]
    source = await trio.to_thread.run_sync(pg.create_empty_database)
    target = await trio.to_thread.run_sync(pg.create_empty_database)
    try:
        with psycopg.connect(pg.conninfo(source), autocommit=True) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
            apply_migrations(conn, older)  # type: ignore[arg-type]
        await populate.index(pg.conninfo(source), populate.events(200))
        # The older Coves had no backups table to record the run in: the dump is still made.
        with trio.fail_after(60):
            result = await backup(_settings(pg, source), scratch)
        assert result.manifest.schema_version == older[-1].version

        with trio.fail_after(60):
            restored = await restore(_settings(pg, target), result.dump, replace=False)
        newer = [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version == LATEST]
        assert restored.migrations_applied == newer
        assert restored.schema_version == LATEST
        assert restored.tables["posts"] > 0
        source_rows = await trio.to_thread.run_sync(snapshot, pg.conninfo(source))
        target_rows = await trio.to_thread.run_sync(snapshot, pg.conninfo(target))
        for table in ("posts", "comments", "votes", "communities", "ingest_cursor"):
            assert source_rows[table] == target_rows[table], table
    finally:
        for name in (source, target):
            await trio.to_thread.run_sync(pg.drop_database, name)


async def test_restore_checks_the_manifest_before_touching_anything(
    pg: TestPostgres, scratch: Path
) -> None:
    source = await _populated(pg, 120)
    target = await trio.to_thread.run_sync(pg.create_empty_database)
    settings = _settings(pg, target)
    try:
        with trio.fail_after(60):
            dump = (await backup(_settings(pg, source), scratch / "b")).dump
        good = dump.read_bytes()
        mpath = manifest_path(dump)
        manifest_text = mpath.read_bytes()

        async def refused(match: str, **kw: bool) -> None:
            with trio.fail_after(30), pytest.raises(BackupError, match=match):
                await restore(settings, dump, replace=False, **kw)
            with psycopg.connect(pg.conninfo(target)) as conn:  # nothing was touched
                assert conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone() == (0,)

        with trio.fail_after(10), pytest.raises(BackupError, match="no such backup file"):
            await restore(settings, scratch / "nope.dump", replace=False)

        dump.write_bytes(good + b"x")
        await refused("its manifest says")
        flipped = bytearray(good)
        flipped[len(flipped) // 2] ^= 0xFF
        dump.write_bytes(bytes(flipped))
        await refused("damaged")
        dump.write_bytes(good)

        data = orjson.loads(manifest_text)
        newer = {**data, "schemaVersion": LATEST + 1, "covesVersion": "9.9.9"}
        mpath.write_bytes(orjson.dumps(newer))
        await refused("newer than this Coves knows.*9.9.9")
        mpath.write_bytes(b"{not json")
        await refused("manifest is unreadable")
        mpath.unlink()
        await refused("no manifest")

        # An operator who knows what the file is may restore it unchecked.
        with trio.fail_after(60):
            result = await restore(settings, dump, replace=False, check_manifest=False)
        assert result.manifest is None and result.tables["posts"] > 0
    finally:
        for name in (source, target):
            await trio.to_thread.run_sync(pg.drop_database, name)


async def test_retention_and_the_post_backup_command(pg: TestPostgres, scratch: Path) -> None:
    source = await _populated(pg, 60)
    dest, offsite = scratch / "b", scratch / "offsite"
    dest.mkdir()
    offsite.mkdir()
    old = dest / "coves-20200101T000000Z.dump"
    old.write_bytes(b"old")
    created = datetime(2020, 1, 1, tzinfo=UTC)
    manifest_path(old).write_bytes(
        Manifest(old.name, "0" * 64, 3, 1, "0.0.1", "16.2", created, "external").to_json()
    )
    orphan = dest / "coves-20200202T000000Z.dump"  # no manifest: its mtime decides
    orphan.write_bytes(b"orphan")
    os.utime(orphan, (created.timestamp(), created.timestamp()))
    keep = [dest / "notes.txt", dest / "coves-hand-made.dump"]
    for path in keep:
        path.write_bytes(b"not ours")
        os.utime(path, (created.timestamp(), created.timestamp()))
    command = (
        'cp "$COVES_BACKUP_FILE" "$COVES_BACKUP_MANIFEST" '
        f'{offsite} && echo "$COVES_BACKUP_SHA256" > {offsite}/sha'
    )
    settings = _settings(pg, source, backup_post_command=Secret(command), backup_retention_days=30)
    try:
        with trio.fail_after(60):
            result = await backup(settings, dest)
        assert sorted(result.pruned) == sorted([old, orphan])
        assert not old.exists() and not manifest_path(old).exists() and not orphan.exists()
        assert all(path.exists() for path in keep)
        copied = offsite / result.dump.name
        assert copied.read_bytes() == result.dump.read_bytes()
        assert (offsite / manifest_path(result.dump).name).exists()
        assert (offsite / "sha").read_text().strip() == result.manifest.sha256

        failing = _settings(
            pg, source, backup_post_command=Secret("echo bucket unreachable >&2; exit 3")
        )
        with trio.fail_after(60), pytest.raises(BackupError, match=r"exit 3.*bucket unreachable"):
            await backup(failing, dest)
        rows = _backup_rows(pg, source)
        assert [r[0] for r in rows] == [True, False]
        assert "BACKUP_POST_COMMAND failed" in str(rows[-1][5])
        assert Path(str(rows[-1][1])).exists()  # the local dump is kept
    finally:
        await trio.to_thread.run_sync(pg.drop_database, source)


def test_prune_keeps_recent_backups(scratch: Path) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    recent = scratch / "coves-20260520T000000Z.dump"
    recent.write_bytes(b"x")
    manifest_path(recent).write_bytes(
        Manifest(
            recent.name,
            "0" * 64,
            1,
            70,
            "0.1.0",
            "16.2",
            datetime(2026, 5, 20, tzinfo=UTC),
            "embedded",
        ).to_json()
    )
    assert prune(scratch, 30, now, keep=scratch / "other.dump") == []
    assert prune(scratch, 5, now, keep=scratch / "other.dump") == [recent]


async def test_backup_refusals_are_clear(pg: TestPostgres, scratch: Path) -> None:
    empty = await trio.to_thread.run_sync(pg.create_empty_database)
    source = await trio.to_thread.run_sync(pg.create_database)
    try:
        with trio.fail_after(30), pytest.raises(BackupError, match="no Coves schema"):
            await backup(_settings(pg, empty), scratch)
        with trio.fail_after(30), pytest.raises(PgToolError, match="PG_BIN_DIR"):
            await backup(_settings(pg, source, pg_bin_dir=scratch), scratch / "b")
        [(ok, _file, _size, _sha, _schema, error)] = _backup_rows(pg, source)
        assert ok is False and "no pg_dump" in str(error)
    finally:
        for name in (empty, source):
            await trio.to_thread.run_sync(pg.drop_database, name)


def test_tool_selection_by_major_version(scratch: Path) -> None:
    tool = find_tool("pg_dump", 14)
    assert tool.major >= 14 and tool.path.name == "pg_dump"
    with pytest.raises(PgToolError, match=r"PostgreSQL 99 or newer.*PG_BIN_DIR"):
        find_tool("pg_dump", 99)
    with pytest.raises(PgToolError, match=f"PG_BIN_DIR={scratch}"):
        find_tool("pg_restore", 14, scratch)


def test_the_commands(
    pg: TestPostgres,
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = trio.run(_populated, pg, 60)
    target = pg.create_empty_database()
    (scratch / "empty.env").touch()
    env_file = str(scratch / "empty.env")
    try:
        monkeypatch.setenv("LOG_LEVEL", "warning")
        monkeypatch.setenv("DATABASE_URL", database_url(pg, source))
        assert cli.main(["--env-file", env_file, "backup", "--to", str(scratch / "b")]) == 0
        out = capsys.readouterr().out
        assert "backup:" in out and "sha256" in out and f"schema:  {LATEST}" in out
        dump = next((scratch / "b").glob("coves-*.dump"))

        monkeypatch.setenv("DATABASE_URL", database_url(pg, target))
        assert cli.main(["--env-file", env_file, "restore", str(dump)]) == 0
        out = capsys.readouterr().out
        assert f"restored {dump.name}" in out and f"schema version: {LATEST}" in out
        assert "cursor jetstream:" in out
        assert cli.main(["--env-file", env_file, "restore", str(dump)]) == 1
        assert "add --yes" in capsys.readouterr().err
        assert cli.main(["--env-file", env_file, "restore", str(dump), "--yes"]) == 0
        capsys.readouterr()
        monkeypatch.setenv("DATABASE_URL", "postgresql://x@/x?host=/nonexistent&port=5432")
        assert cli.main(["--env-file", env_file, "backup", "--to", str(scratch / "b")]) == 1
        assert "coves backup:" in capsys.readouterr().err
    finally:
        for name in (source, target):
            pg.drop_database(name)
