"""Ranked-listing snapshots: what makes hot/top paging stable.

Ranks move while a client pages (votes arrive), so keyset paging on a live
rank repeats some items and skips others. Instead the first page freezes the
ordered list of item URIs (up to ``size`` items, like Reddit's 1000-item
listings) and later pages read from that frozen list by offset; the cursor
carries the snapshot id and offset. Page contents are still hydrated live,
so counts are current; only the order is frozen.

Snapshots are shared: first-page requests for the same listing within
``reuse_seconds`` get the same snapshot (one computation, coalesced across
concurrent requests), which is also what keeps the first page cheap under
load. They are kept in process and in PostgreSQL (so a cursor survives a
restart and works on any process of the deployment) until ``ttl_seconds``.
Storing one is a single statement on an unlogged table (no durable commit to
wait for); housekeeping bounds the table (``FEED_SNAPSHOT_MAX_ROWS``), so a
cursor can expire earlier than its TTL under a flood of new listings, and
all of them do if PostgreSQL crashes: the client is told to start again.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from psycopg import Connection

from coves.clock import monotonic, wall_now
from coves.db import Database, Row
from coves.db.queries import snapshots as snapshot_sql


@dataclass(frozen=True)
class Snapshot:
    id: str
    key: str
    items: tuple[str, ...]
    taken_at: float  # wall-clock unix seconds (for cursor-carried snapshot time)


class SqlCompute:
    """A listing computed by statements alone (``on_conn``): the store runs them and
    stores the snapshot on the same connection, in one thread hop instead of two.
    Awaited on its own, it runs ``on_conn`` in a hop of its own."""

    __slots__ = ("_db", "on_conn")

    def __init__(self, db: Database, on_conn: Callable[[Connection[Row]], list[str]]) -> None:
        self._db = db
        self.on_conn = on_conn

    async def __call__(self) -> list[str]:
        return await self._db.run(self.on_conn, transaction=False)


Compute = Callable[[], Awaitable[list[str]]] | SqlCompute


class SnapshotStore:
    def __init__(
        self,
        db: Database,
        *,
        reuse_seconds: float = 10.0,
        ttl_seconds: float = 3600.0,
        max_cached: int = 512,
    ) -> None:
        self._db = db
        self.reuse_seconds = reuse_seconds
        self.ttl_seconds = ttl_seconds
        self._max_cached = max_cached
        self._by_id: OrderedDict[str, tuple[float, Snapshot]] = OrderedDict()
        # key -> (made at, snapshot), oldest first (a key is moved to the end when renewed)
        self._current: OrderedDict[str, tuple[float, Snapshot]] = OrderedDict()
        self._inflight: dict[str, trio.Event] = {}

    async def current(self, key: str, compute: Compute) -> Snapshot:
        """The shared snapshot for ``key``, computing one if none is fresh."""
        while True:
            now = monotonic()
            cached = self._current.get(key)
            if cached is not None and now - cached[0] < self.reuse_seconds:
                return cached[1]
            waiting = self._inflight.get(key)
            if waiting is None:
                break
            await waiting.wait()
        done = trio.Event()
        self._inflight[key] = done
        try:
            snapshot_id = secrets.token_hex(8)
            if isinstance(compute, SqlCompute):
                on_conn, ttl = compute.on_conn, self.ttl_seconds

                def compute_and_store(conn: Connection[Row]) -> list[str]:
                    items = on_conn(conn)
                    snapshot_sql.insert_on(conn, snapshot_id, key, items, ttl)
                    return items

                items = tuple(await self._db.run(compute_and_store, transaction=False))
            else:
                items = tuple(await compute())
                await snapshot_sql.insert(self._db, snapshot_id, key, items, self.ttl_seconds)
            snapshot = Snapshot(snapshot_id, key, items, wall_now())
            self._remember(snapshot)
            self._current[key] = (monotonic(), snapshot)
            self._current.move_to_end(key)
            while len(self._current) > self._max_cached:
                self._current.popitem(last=False)
            return snapshot
        finally:
            del self._inflight[key]
            done.set()

    async def load(self, snapshot_id: str) -> Snapshot | None:
        """A snapshot named by a cursor, or None when it has expired."""
        now = monotonic()
        hit = self._by_id.get(snapshot_id)
        if hit is not None:
            if now - hit[0] < self.ttl_seconds:
                self._by_id.move_to_end(snapshot_id)
                return hit[1]
            del self._by_id[snapshot_id]
        row = await snapshot_sql.get(self._db, snapshot_id)
        if row is None:
            return None
        snapshot = Snapshot(snapshot_id, row["key"], tuple(row["items"]), row["taken_at"])
        self._remember(snapshot)
        return snapshot

    def _remember(self, snapshot: Snapshot) -> None:
        self._by_id[snapshot.id] = (monotonic(), snapshot)
        self._by_id.move_to_end(snapshot.id)
        while len(self._by_id) > self._max_cached:
            self._by_id.popitem(last=False)


class StaleWhileRefreshing:
    """First pages keep being served from the previous snapshot while a new one
    is computed.

    ``SnapshotStore.current`` coalesces a recomputation, but every request for
    the listing waits for it (44 ms for discover at 1M posts, far more on a busy
    machine). Here the request that triggers the recomputation waits; the others
    get the snapshot it replaces (at most ``stale_seconds`` old), whose cursors
    stay valid for the store's TTL.
    """

    def __init__(self, store: SnapshotStore, stale_seconds: float = 60.0) -> None:
        self.store = store
        self.stale_seconds = stale_seconds
        self._last: dict[str, tuple[float, Snapshot]] = {}  # key -> (first seen, snapshot)
        self._refreshing: set[str] = set()

    async def current(self, key: str, compute: Compute) -> Snapshot:
        now = monotonic()
        last = self._last.get(key)
        due = last is None or now - last[0] >= self.store.reuse_seconds
        if (
            due
            and key in self._refreshing
            and last is not None
            and (now - last[0] < self.stale_seconds)
        ):
            return last[1]
        if not due:
            return await self.store.current(key, compute)
        self._refreshing.add(key)
        try:
            snapshot = await self.store.current(key, compute)
        finally:
            self._refreshing.discard(key)
        if last is None or last[1].id != snapshot.id:
            self._last[key] = (monotonic(), snapshot)
            if len(self._last) > 4096:
                for old in list(self._last)[:2048]:
                    del self._last[old]
        return snapshot
