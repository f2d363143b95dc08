"""Operational facts only the database knows, read periodically for /metrics and _health.

``coves backup`` runs as its own process (a systemd timer) and dead letters
pile up in a table; neither is visible to the server's memory. This child
reads them every ``interval`` seconds, so a Prometheus scrape or a ``_health``
call never waits on a query: the gauges and details serve the last reading.

Also exported at scrape time: free and total bytes of the filesystems
holding the data directory and the backup directory (one ``statvfs`` each),
for the disk-filling alert.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio
from prometheus_client.core import GaugeMetricFamily

from coves import clock
from coves.db import Database, DatabaseError
from coves.db.queries import ops as q
from coves.logs import get_logger
from coves.metrics import Metrics
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)

FACTS_INTERVAL_SECONDS = 30.0


class OpsFacts:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        *,
        data_dir: Path,
        backup_dir: Path,
        interval: float = FACTS_INTERVAL_SECONDS,
    ) -> None:
        self._db = db
        self.interval = interval
        self.dirs = {"data": data_dir, "backups": backup_dir}
        self.dead_letters: dict[str, int] = {}
        self.backups: q.BackupFacts | None = None
        self.read_at: float | None = None  # wall time of the last good reading
        self.error: str | None = None
        metrics.add_callback("coves_ops_facts", self._collect)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self.refresh()
            await trio.sleep(self.interval)

    async def refresh(self) -> bool:
        try:
            counts = await q.dead_letter_counts(self._db)
            backups = await q.backup_facts(self._db)
        except DatabaseError as exc:
            if self.error is None:
                log.warning(
                    "operational facts unavailable; serving the last reading", error=str(exc)
                )
            self.error = str(exc)
            return False
        self.dead_letters = {c.reason: c.count for c in counts}
        self.backups = backups
        self.read_at = clock.wall_now()
        self.error = None
        return True

    def details(self) -> dict[str, Any]:
        backups = self.backups
        last_ok = backups.last_ok_at if backups else None
        last_failed = backups.last_failure_at if backups else None
        return {
            "deadLetters": sum(self.dead_letters.values()),
            "deadLettersByReason": dict(self.dead_letters),
            "lastBackup": last_ok.isoformat(timespec="seconds") if last_ok else None,
            "lastBackupAgeSeconds": (
                None if last_ok is None else round(clock.wall_now() - last_ok.timestamp())
            ),
            "lastBackupFailure": last_failed.isoformat(timespec="seconds") if last_failed else None,
            "readAt": None if self.read_at is None else round(clock.wall_now() - self.read_at),
            "error": self.error,
        }

    def _collect(self) -> Iterable[GaugeMetricFamily]:
        stored = GaugeMetricFamily(
            "coves_dead_letters", "dead letters kept in the database, by reason", labels=["reason"]
        )
        for reason, count in self.dead_letters.items():
            stored.add_metric([reason], count)
        backups = self.backups
        last_ok = GaugeMetricFamily(
            "coves_backup_last_success_timestamp_seconds",
            "when the newest successful coves backup finished (0: never)",
        )
        last_failed = GaugeMetricFamily(
            "coves_backup_last_failure_timestamp_seconds",
            "when the newest failed coves backup finished (0: never)",
        )
        size = GaugeMetricFamily(
            "coves_backup_last_size_bytes", "size of the newest successful backup"
        )
        if backups is not None:  # nothing read yet: no sample rather than a false "never"
            last_ok.add_metric([], backups.last_ok_at.timestamp() if backups.last_ok_at else 0)
            last_failed.add_metric(
                [], backups.last_failure_at.timestamp() if backups.last_failure_at else 0
            )
            size.add_metric([], backups.last_ok_size or 0)
        free = GaugeMetricFamily(
            "coves_disk_free_bytes",
            "free bytes on the filesystem of a Coves directory",
            labels=["dir"],
        )
        total = GaugeMetricFamily(
            "coves_disk_size_bytes", "size of the filesystem of a Coves directory", labels=["dir"]
        )
        for name, path in self.dirs.items():
            usage = _usage(path)
            if usage is not None:
                free.add_metric([name], usage.free)
                total.add_metric([name], usage.total)
        return [stored, last_ok, last_failed, size, free, total]


def _usage(path: Path) -> Any:
    """Disk usage of the nearest existing ancestor (the backup dir may not exist yet)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate)
        except OSError:
            continue
    return None


def ops_facts_child(
    db: Database, metrics: Metrics, *, data_dir: Path, backup_dir: Path
) -> ChildSpec:
    facts = OpsFacts(db, metrics, data_dir=data_dir, backup_dir=backup_dir)
    return ChildSpec("ops", facts.run, critical=False, details=facts.details)
