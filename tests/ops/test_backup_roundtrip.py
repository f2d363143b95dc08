"""The issue's round trip: index, back up a live instance, restore elsewhere, resume without loss.

Instance A (embedded PostgreSQL in its own data directory) ingests the first
part of a stream from a fake Jetstream over real websockets, is backed up
while it runs, then ingests the rest. The backup is restored into a fresh
data directory B: every table matches A at the moment of the backup. B then
starts, resumes ingestion from the restored cursor, and ends with exactly
A's final state (up to the times rows were written), so nothing was lost
across the backup, and nothing applied twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import nurseries.main
from bench.gen_stream import INSTANCE_DID
from coves.config import Settings, test_settings
from coves.context import AppContext
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.queries import ops as q
from coves.ops.backup import PROCESS_STATE_TABLES
from coves.ops.backup_cli import backup
from coves.ops.restore import restore
from nurseries.main import Runtime, run_server
from nurseries.supervisor import ChildSpec
from tests.ops import populate
from tests.ops.tables import differences, snapshot, volatile_columns
from tests.support.fake_jetstream import FakeJetstream


def _settings(data_dir: Path, jetstream_url: str) -> Settings:
    return test_settings(
        data_dir=data_dir,
        instance_did=INSTANCE_DID,
        jetstream_enabled=True,
        jetstream_url=jetstream_url,
        jetstream_batch_ms=20,
        skip_did_web_verification=True,
        pds_health_interval_seconds=0.0,
        host="127.0.0.1",
        port=0,
    )


@pytest.fixture
def ingestion_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the consumer among the capability children: the identity backfill and the
    did:web verifier write at moments of their own, which would make two instances'
    tables differ for reasons that have nothing to do with backups."""
    real: Callable[..., list[ChildSpec]] = nurseries.main.capability_children

    def children(ctx: AppContext, **kwargs: Any) -> list[ChildSpec]:
        return [spec for spec in real(ctx, **kwargs) if spec.name == "jetstream"]

    monkeypatch.setattr(nurseries.main, "capability_children", children)


async def _until_cursor(db: Database, time_us: int) -> None:
    with trio.fail_after(60):
        while True:
            rows = await q.cursors(db)
            if rows and rows[0]["time_us"] >= time_us:
                return
            await trio.sleep(0.05)


async def test_backup_restore_and_resume_without_loss(scratch: Path, ingestion_only: None) -> None:
    stream = populate.events(900, communities=12)
    first, rest = stream[:600], stream[600:]
    fake = FakeJetstream()
    a_dir, b_dir, dumps = scratch / "a", scratch / "b", scratch / "backups"
    conninfo_a = EmbeddedPostgres(a_dir).conninfo()
    conninfo_b = EmbeddedPostgres(b_dir).conninfo()
    with trio.fail_after(240):
        async with trio.open_nursery() as outer:
            url = await outer.start(fake.serve)

            # Instance A ingests the first part, is backed up live, then ingests the rest.
            async with trio.open_nursery() as nursery:
                a: Runtime = await nursery.start(run_server, _settings(a_dir, url))
                assert a.db is not None
                # With no stored cursor the consumer tails live: publish once it listens.
                await fake.wait_for_connections(1)
                for event in first:
                    fake.publish(event)
                await _until_cursor(a.db, first[-1]["time_us"])
                at_backup = await trio.to_thread.run_sync(snapshot, conninfo_a)
                result = await backup(_settings(a_dir, url), dumps)  # beside the running A
                assert result.manifest.database == "embedded"
                for event in rest:
                    fake.publish(event)
                await _until_cursor(a.db, rest[-1]["time_us"])
                # Columns stamped with the time of the write differ between A and B.
                skip = volatile_columns(conninfo_a)
                final_a = await trio.to_thread.run_sync(
                    lambda: snapshot(conninfo_a, skip_columns=skip)
                )
                nursery.cancel_scope.cancel()

            # Restored into a fresh data directory: every table as A had it.
            restored = await restore(_settings(b_dir, url), result.dump, replace=False)
            assert restored.cursors == [{"name": "jetstream", "timeUs": first[-1]["time_us"]}]
            at_restore = await trio.to_thread.run_sync(_snapshot_stopped, b_dir)
            for table in PROCESS_STATE_TABLES:  # A's live process state is not data
                assert at_backup.pop(table) and at_restore.pop(table) == [], table
            assert differences(at_backup, at_restore) == []
            assert at_restore["posts"] and at_restore["votes"] and at_restore["comments"]

            # B resumes from the restored cursor and ends where A ended.
            async with trio.open_nursery() as nursery:
                b: Runtime = await nursery.start(run_server, _settings(b_dir, url))
                assert b.db is not None
                await _until_cursor(b.db, rest[-1]["time_us"])
                final_b = await trio.to_thread.run_sync(
                    lambda: snapshot(conninfo_b, skip_columns=skip)
                )
                nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()

    # A recorded the backup after the dump was taken: B's copy predates that row.
    assert len(final_a.pop("backups")) == 1 and final_b.pop("backups") == []
    # Process state (each consumer's session, each process's heartbeat) is each
    # instance's own, and is not in dumps: B has its own, A its own.
    for table in PROCESS_STATE_TABLES:
        assert len(final_b.pop(table)) == len(final_a.pop(table)) == 1, table
    assert differences(final_a, final_b) == []
    # The second part really was ingested by B after the restore (not in the dump).
    assert len(final_b["votes"]) > len(at_restore["votes"])


def _snapshot_stopped(data_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    server = EmbeddedPostgres(data_dir)
    process = server.start_blocking()
    try:
        return snapshot(server.conninfo())
    finally:
        stop_blocking(process)
        server.unlock()  # the data directory's lock, so B can start on it next
