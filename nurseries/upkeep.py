"""Upkeep children every process of a deployment runs: heartbeat, shared rate limits, sweeps.

- heartbeat: says every few seconds that this process is alive and how its
  children are (``process_heartbeats``), so any API process can answer
  ``_health`` for the whole deployment, and publishes scrape-time metrics
  for the shared /metrics when several processes serve;
- rate-limit sync: adds this process's rate-limit counts to the shared
  windows and reads back the totals (coves/xrpc/ratelimit.py, SharedStore);
- housekeeping: bounds the tables that grow with traffic (listing
  snapshots, rate-limit windows, heartbeats of processes long gone). Every
  process runs it; sweeps that overlap are harmless (each deletes what is
  still there, in bounded batches).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from coves import clock, pids
from coves.context import HealthSource
from coves.db import Database
from coves.db.queries import processes, ratelimits, snapshots
from coves.metrics import Metrics
from coves.xrpc.ratelimit import SharedStore
from nurseries.periodic import Periodic, periodic_child
from nurseries.supervisor import ChildSpec

HEARTBEAT_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 30.0


def process_ident() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_child(
    db: Database,
    health: HealthSource,
    *,
    name: str,
    role: str,
    metrics: Metrics | None = None,
    interval: float = HEARTBEAT_SECONDS,
    extra: Callable[[], dict[str, object]] | None = None,
) -> ChildSpec:
    ident = process_ident()
    host, pid = socket.gethostname(), os.getpid()
    started_at = clock.wall_now()

    async def beat() -> None:
        if metrics is not None:
            metrics.publish_callbacks()
        details: dict[str, object] = {"children": dict(health.health_report())}
        if extra is not None:
            details.update(extra())
        await processes.beat(
            db,
            ident=ident,
            name=name,
            role=role,
            host=host,
            pid=pid,
            healthy=health.healthy,
            started_at=started_at,
            details=details,
        )

    async def goodbye() -> None:
        await processes.forget(db, ident)

    return periodic_child(Periodic("heartbeat", interval, beat, on_stop=goodbye))


def ratelimit_sync_child(db: Database, store: SharedStore, interval: float) -> ChildSpec:
    async def sync() -> None:
        await store.sync(lambda *columns: ratelimits.add_hits(db, *columns))

    # A final sync on the way out, so a draining worker's counts are not lost.
    return periodic_child(Periodic("ratelimits", interval, sync, on_stop=sync))


def housekeeping_child(
    db: Database, *, snapshot_max_rows: int, interval: float = HOUSEKEEPING_SECONDS
) -> ChildSpec:
    host = socket.gethostname()

    async def sweep() -> None:
        await snapshots.sweep(db, max_rows=snapshot_max_rows)
        await ratelimits.sweep(db)
        await processes.sweep(db)
        # Processes of this host that died without saying goodbye (killed, or
        # a previous run's): forget them now rather than in an hour.
        dead = [ident for ident, pid in await processes.on_host(db, host) if not pids.alive(pid)]
        await processes.forget_many(db, dead)

    return periodic_child(Periodic("housekeeping", interval, sweep))
