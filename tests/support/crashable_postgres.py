"""A PostgreSQL server of its own that a test may crash (kill -9) and restart.

Durable settings (fsync on), with the WAL writer and background writer slowed
so asynchronously committed transactions stay in shared memory for seconds:
a crash then reliably takes back the last commits, as it can in production
within a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from coves.db.embedded import EmbeddedPostgres, stop_blocking
from coves.db.migrate import apply_migrations, load_migrations

SLOW_WAL = {
    "wal_writer_delay": "10s",
    "wal_writer_flush_after": "1GB",
    "bgwriter_lru_maxpages": "0",
    "autovacuum": "off",
    "checkpoint_timeout": "1h",
}


class CrashablePostgres:
    def __init__(self, root: Path) -> None:
        self.server = EmbeddedPostgres(
            root, database="coves", durable=True, extra_settings=SLOW_WAL
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.crashes = 0

    @property
    def conninfo(self) -> str:
        return self.server.conninfo()

    def start(self) -> None:
        self.process = self.server.start_blocking()

    def migrate(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
            apply_migrations(conn, load_migrations())  # type: ignore[arg-type]

    def crash(self) -> None:
        """kill -9 the postmaster and every backend at once (its process group)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        self.crashes += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_blocking(self.process)
            self.process = None

    def cursor(self, name: str = "jetstream") -> int | None:
        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute("SELECT time_us FROM ingest_cursor WHERE name = %s", (name,))
            found = row.fetchone()
            return None if found is None else int(found[0])


@contextmanager
def crashable_postgres() -> Iterator[CrashablePostgres]:
    root = Path(tempfile.mkdtemp(prefix="coves-crash-pg-"))
    server = CrashablePostgres(root)
    try:
        server.start()
        server.migrate()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
