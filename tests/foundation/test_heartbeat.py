"""Heartbeats: every process says it is alive; _health shows the whole deployment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import trio

from coves.context import AppContext
from coves.db.queries import processes
from coves.xrpc.app import create_app
from nurseries.upkeep import heartbeat_child, housekeeping_child


class Health:
    healthy = True

    def health_report(self) -> Mapping[str, object]:
        return {"jetstream": {"status": "running", "details": {"lagSeconds": 0.4}}}


async def test_the_heartbeat_child_beats_and_says_goodbye(ctx: AppContext) -> None:
    spec = heartbeat_child(ctx.db, Health(), name="ingest", role="ingest", interval=0.05)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(spec.start)
            rows: list[Any] = []
            while not rows:
                rows = await ctx.db.fetch("SELECT * FROM process_heartbeats")
                await trio.sleep(0.02)
            health = await create_app(ctx, {}).test_client().get("/xrpc/_health")
            body = await health.get_json()
            [seen] = body["processes"]
            assert seen["name"] == "ingest" and seen["role"] == "ingest"
            assert seen["pid"] == os.getpid() and seen["host"] == socket.gethostname()
            assert seen["healthy"] is True
            assert seen["children"]["jetstream"]["details"]["lagSeconds"] == 0.4
            nursery.cancel_scope.cancel()
    assert await ctx.db.fetchval("SELECT count(*) FROM process_heartbeats") == 0


async def test_silent_and_dead_processes_are_shown_as_such_then_forgotten(
    ctx: AppContext,
) -> None:
    host = socket.gethostname()
    common: dict[str, Any] = {"role": "api", "healthy": True, "started_at": 0.0, "details": {}}
    await processes.beat(ctx.db, ident="far:1", name="api-0", host="far", pid=1, **common)
    await processes.beat(
        ctx.db, ident=f"{host}:1", name="api-1", host=host, pid=2**22 + 7, **common
    )
    await ctx.db.execute(
        "UPDATE process_heartbeats SET seen_at = now() - interval '20 s' WHERE id = 'far:1'"
    )
    body = await (await create_app(ctx, {}).test_client().get("/xrpc/_health")).get_json()
    shown = {p["name"]: p for p in body["processes"]}
    assert shown["api-0"]["healthy"] is False  # silent for longer than a few beats
    assert shown["api-0"]["lastSeenSecondsAgo"] >= 19
    # Housekeeping forgets processes of this host that no longer exist.
    spec = housekeeping_child(ctx.db, snapshot_max_rows=100)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(spec.start)
            while await ctx.db.fetchval("SELECT count(*) FROM process_heartbeats") != 1:
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert await ctx.db.fetchval("SELECT id FROM process_heartbeats") == "far:1"
