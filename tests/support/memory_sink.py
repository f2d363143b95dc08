"""An in-memory Sink honouring the contract in ``coves.ingest.types``.

Like the indexer it is atomic (a batch and its cursor commit together, or
nothing does: every await happens before the commit step) and idempotent
(an event seen before is skipped), so consumer tests can assert "no loss,
no duplicates" across reconnects, outages and cancellation. Controls let a
test take the "database" down, hold a batch mid-apply, or slow it down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from coves.db import DatabaseUnavailable
from coves.ingest.types import BatchResult, CpuRunner, Frame, in_thread


def event_key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event.get("did"), event.get("kind"), event.get("time_us"))


@dataclass
class Staged:
    frames: list[Frame]
    parsed: list[dict[str, Any]]
    dead: int


class MemorySink:
    def __init__(self, cursor: int | None = None) -> None:
        self.cursor = cursor
        self.applied: list[dict[str, Any]] = []
        self._seen: set[tuple[Any, ...]] = set()
        self.batch_sizes: list[int] = []
        self.batch_times: list[float] = []  # trio time each batch committed
        self.attempts = 0  # commits begun
        self.staged = 0  # batches staged (parsed), committed or not
        self.cursor_loads = 0
        self.down = False  # raise DatabaseUnavailable from every call
        self.gate: trio.Event | None = None  # when set, commit waits on it before committing
        self.delay = 0.0  # commit takes this long (Trio time)
        self.fail_with: BaseException | None = None  # a non-database bug
        self.in_apply = 0
        self.entered = trio.Event()  # set each time an apply starts (replace to re-arm)

    async def load_cursor(self) -> int | None:
        await trio.lowlevel.checkpoint()
        self.cursor_loads += 1
        if self.down:
            raise DatabaseUnavailable("connection refused (memory sink is down)")
        return self.cursor

    async def apply(self, frames: Sequence[Frame]) -> BatchResult:
        return await self.commit(await self.stage(frames, in_thread))

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner | None = None) -> Staged:
        await trio.lowlevel.checkpoint()
        self.staged += 1
        parsed: list[dict[str, Any]] = []
        dead = 0
        for frame in frames:
            event = self.parse(frame)
            if event is None:
                dead += 1
                continue
            parsed.append(event)
        return Staged(list(frames), parsed, dead)

    async def commit(
        self, staged: Staged, meanwhile: Callable[[], None] | None = None
    ) -> BatchResult:
        frames, parsed, dead = staged.frames, staged.parsed, staged.dead
        self.attempts += 1
        self.in_apply += 1
        self.entered.set()
        try:
            if self.fail_with is not None:
                raise self.fail_with
            if self.down:
                raise DatabaseUnavailable("connection refused (memory sink is down)")
            if self.delay:
                await trio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
            await trio.lowlevel.checkpoint()
            if self.down:
                raise DatabaseUnavailable("connection lost mid-transaction")
            # -- commit: no checkpoint from here on, so it is all or nothing --
            fresh = 0
            newest: int | None = None
            for event in parsed:
                newest = max(newest or 0, self.position(event))
                key = self.key(event)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self.applied.append(event)
                fresh += 1
            if newest is not None:
                self.cursor = max(self.cursor or 0, newest)
            self.batch_sizes.append(len(frames))
            self.batch_times.append(trio.current_time())
            return BatchResult(
                events=len(frames),
                applied=fresh,
                skipped=len(parsed) - fresh,
                dead_lettered=dead,
                cursor=self.cursor if newest is not None else None,
                newest_event_us=newest,
            )
        finally:
            self.in_apply -= 1

    def applied_keys(self) -> list[tuple[Any, ...]]:
        return [self.key(e) for e in self.applied]

    # -- what the stream's frames are (Jetstream here; see FirehoseMemorySink) --------
    def parse(self, frame: Frame) -> dict[str, Any] | None:
        try:
            event = json.loads(frame.data)
            int(event["time_us"])
        except (ValueError, KeyError, TypeError):
            return None
        return dict(event)

    def position(self, event: dict[str, Any]) -> int:
        return int(event["time_us"])

    def key(self, event: dict[str, Any]) -> tuple[Any, ...]:
        return event_key(event)


class FirehoseMemorySink(MemorySink):
    """The same contract over firehose frames: the cursor is the ``seq``, an event is
    one frame (decoded by the production decoder), keyed by its repo and rev."""

    def parse(self, frame: Frame) -> dict[str, Any] | None:
        from coves.ingest.firehose import decode_frame

        data = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
        decoded = decode_frame(data)
        if decoded.seq is None or decoded.kind == "malformed":
            return None
        return {"seq": decoded.seq, "did": decoded.did, "rev": decoded.rev, "kind": decoded.kind}

    def position(self, event: dict[str, Any]) -> int:
        return int(event["seq"])

    def key(self, event: dict[str, Any]) -> tuple[Any, ...]:
        return (event["did"], event["kind"], event["rev"] or event["seq"])
