"""The contract between the Jetstream consumer and the indexer.

The consumer (``nurseries/jetstream.py``) owns the connection and hands raw
frames, in arrival order, to a :class:`Sink`. The sink (the indexer) parses,
validates and applies them, and persists the cursor in the same transaction
as their effects: a batch either commits whole, cursor included, or raises
and commits nothing, so the consumer can always resume from the stored
cursor without losing or double-counting anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import trio

from coves.db import DatabaseError

T = TypeVar("T")


class SessionLost(DatabaseError):
    """The database restarted since the consumer read its cursor; nothing was applied.

    Commits are asynchronous, so the restart may have taken back batches the
    consumer believes applied: it must reconnect and resume from the cursor
    the database has now (``load_cursor`` again), never from memory.
    """


@dataclass(frozen=True, slots=True)
class Frame:
    data: str | bytes  # one websocket message, exactly as received
    received_at: float  # coves.clock.monotonic() at receipt


@dataclass(frozen=True)
class BatchResult:
    events: int  # frames in the batch
    applied: int  # events that changed indexed state
    skipped: int  # duplicates, stale revs, ignored kinds
    dead_lettered: int  # malformed or rejected, kept in dead_letters
    cursor: int | None  # time_us persisted with this batch (None if none carried one)
    newest_event_us: int | None = None  # for lag: newest time_us seen in the batch
    reasons: dict[str, int] = field(default_factory=dict)  # dead-letter/ignore counts by reason


class CpuRunner(Protocol):
    """Runs CPU-bound work off the event loop and returns its result
    (``trio.to_thread.run_sync``-like; see ``coves.ingest.pipeline.Overlap``)."""

    async def __call__(self, fn: Callable[..., T], /, *args: Any) -> T: ...


async def in_thread(fn: Callable[..., T], /, *args: Any) -> T:
    """The plain :class:`CpuRunner`: a worker thread."""
    return await trio.to_thread.run_sync(fn, *args)


class Sink(Protocol):
    """Where a consumer's batches go, in two steps so they can overlap
    (``coves.ingest.pipeline``): ``stage`` batch N+1 while ``commit`` applies N."""

    async def load_cursor(self) -> int | None:
        """The time_us of the last applied event, or None on a fresh database."""
        ...

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner, /) -> Any:
        """Everything that writes nothing: parse, decode, check, fetch.

        CPU-bound steps go through ``cpu`` (never on the event loop). Runs while
        the previous batch may still be committing, so it must not depend on
        that batch's effects. Never raises for malformed frames (they become
        dead letters); may raise ``coves.db.DatabaseError``.
        """
        ...

    async def commit(self, staged: Any, meanwhile: Callable[[], None] | None, /) -> BatchResult:
        """Apply a staged batch atomically (cursor included) or raise without committing.

        ``meanwhile`` is work for the database thread to do once the batch's
        statements are sent, while the server executes them (it never raises;
        it may run more than once, or not at all). Raises
        ``coves.db.DatabaseError`` subclasses when the database is unavailable.
        Batches are committed in the order they were staged.
        """
        ...
