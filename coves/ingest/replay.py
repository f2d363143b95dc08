"""``coves replay FILE``: feed a captured Jetstream stream through the indexer.

The file is JSON lines (one Jetstream message per line), optionally
zstd-compressed (``.zst`` suffix or the zstd magic number). Frames go through
the very same :class:`~coves.ingest.indexer.Indexer` and batch size as the
live consumer, so a replay reproduces exactly what live ingestion would have
indexed; it is also how the ingestion benchmark measures throughput.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

import trio

from coves import clock
from coves.config import Settings
from coves.ingest.apply import Batch
from coves.ingest.indexer import Indexer
from coves.ingest.types import BatchResult, Frame
from coves.interpreter import apply_switch_interval

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# GIL switch interval while replaying (see replay()).
REPLAY_SWITCH_INTERVAL_SECONDS = 0.0005


def open_stream(path: Path) -> IO[bytes]:
    """A binary reader of the file's lines, decompressing zstd when present."""
    raw = path.open("rb")
    head = raw.peek(4)[:4] if isinstance(raw, io.BufferedReader) else b""
    if path.suffix == ".zst" or head == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return raw


def read_batches(stream: IO[bytes], batch_size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for raw_line in stream:
        line = raw_line.strip()
        if not line:
            continue
        batch.append(Frame(data=line, received_at=0.0))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class Progress:
    """A single self-overwriting stderr line, redrawn at most every ``interval`` s."""

    def __init__(self, out: TextIO = sys.stderr, interval: float = 0.5) -> None:
        self._out = out
        self._interval = interval
        self._last = -interval
        self._tty = out.isatty()

    def update(self, events: int, elapsed: float, *, final: bool = False) -> None:
        now = clock.monotonic()
        if not final and now - self._last < self._interval:
            return
        self._last = now
        rate = events / elapsed if elapsed > 0 else 0.0
        text = f"replay: {events:,} events  {rate:,.0f} events/s"
        if self._tty:
            self._out.write("\r" + text + ("\n" if final else ""))
        else:
            self._out.write(text + "\n")
        self._out.flush()


@dataclass
class ReplaySummary:
    events: int = 0
    applied: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    elapsed: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def render(self, dead_letter_reasons: frozenset[str]) -> str:
        lines = [
            f"events:        {self.events:,}",
            f"applied:       {self.applied:,}",
            f"skipped:       {self.skipped:,}",
            f"dead-lettered: {self.dead_lettered:,}",
        ]
        for reason, count in sorted(self.reasons.items()):
            kind = "dead letter" if reason in dead_letter_reasons else "skipped"
            lines.append(f"  {reason} ({kind}): {count:,}")
        lines.append(f"elapsed:       {self.elapsed:.2f} s")
        lines.append(f"rate:          {self.rate:,.0f} events/s")
        return "\n".join(lines)


async def replay(
    indexer: Indexer, path: Path, *, batch_size: int, progress: Progress | None = None
) -> ReplaySummary:
    """Apply the file in order; batch N+1 is parsed while the database finishes batch N.

    While it runs, the GIL switch interval is shortened: when another thread
    holds the GIL (the event loop recording a batch), the database worker
    waiting to hand its next statement over would wait up to Python's 5 ms
    default (measured +1-7% events/s over 200 000 events when parsing still
    ran in a thread of its own, A/B in docs/performance.md).
    """
    summary = ReplaySummary()
    stream = await trio.to_thread.run_sync(open_stream, path)
    previous_interval = apply_switch_interval(REPLAY_SWITCH_INTERVAL_SECONDS)
    started = clock.monotonic()

    def record(result: BatchResult) -> None:
        summary.events += result.events
        summary.applied += result.applied
        summary.skipped += result.skipped
        summary.dead_lettered += result.dead_lettered
        summary.reasons.update(result.reasons)
        summary.elapsed = clock.monotonic() - started
        if progress is not None:
            progress.update(summary.events, summary.elapsed)

    try:
        batches = read_batches(stream, batch_size)
        prepared = await trio.to_thread.run_sync(_next_prepared, batches, indexer)
        while prepared is not None:
            upcoming = _Upcoming(batches, indexer)
            record(await indexer.commit(prepared, meanwhile=upcoming.prepare))
            prepared = await upcoming.get()
        summary.elapsed = clock.monotonic() - started
        if progress is not None:
            progress.update(summary.events, summary.elapsed, final=True)
    finally:
        stream.close()
        if previous_interval is not None:
            sys.setswitchinterval(previous_interval)
    return summary


def _next_prepared(batches: Iterator[list[Frame]], indexer: Indexer) -> Batch | None:
    frames = next(batches, None)
    return None if frames is None else indexer.prepare(frames)


class _Upcoming:
    """The next batch, read and parsed while the database finishes the current one.

    ``prepare`` is the indexer's ``meanwhile`` hook: it runs in the database
    worker thread once the current batch's statements are all sent, so the
    parse overlaps the server's work without competing for the GIL with the
    thread that is sending them (a parsing thread of its own did: it slowed
    the sending and left the server waiting).
    """

    def __init__(self, batches: Iterator[list[Frame]], indexer: Indexer) -> None:
        self._batches = batches
        self._indexer = indexer
        self._done = False
        self._batch: Batch | None = None
        self._error: BaseException | None = None

    def prepare(self) -> None:
        if self._done:  # the hook may be called again when a batch is bisected
            return
        self._done = True
        try:
            self._batch = _next_prepared(self._batches, self._indexer)
        except BaseException as exc:  # re-raised by get(), outside the transaction
            self._error = exc

    async def get(self) -> Batch | None:
        if not self._done:  # the batch had nothing to write: no hook ran
            await trio.to_thread.run_sync(self.prepare)
        if self._error is not None:
            raise self._error
        return self._batch


# -- the command ---------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="JSON lines of Jetstream events (.zst allowed)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="events per transaction (default: JETSTREAM_BATCH_SIZE, as the live consumer)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"coves replay: no such file: {path}", file=sys.stderr)
        return 2
    batch_size = args.batch_size or settings.jetstream_batch_size
    if batch_size < 1:
        print("coves replay: --batch-size must be positive", file=sys.stderr)
        return 2
    try:
        return trio.run(_main, settings, path, batch_size)
    except BaseException as exc:
        problem = _find_problem(exc)
        if problem is None:
            raise
        # Batches already applied stay applied (each committed with its cursor);
        # re-running the same file is safe: it is idempotent.
        print(f"coves replay: {problem}", file=sys.stderr)
        return 1


def _find_problem(exc: BaseException) -> str | None:
    """A readable reason for the failures an operator can act on, else None."""
    import zstandard

    from coves.db import DatabaseError

    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_problem(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, zstandard.ZstdError | UnicodeDecodeError | OSError):
        return f"cannot read the stream: {exc}"
    if isinstance(exc, DatabaseError):
        return f"database unavailable: {exc}"
    return None


async def _main(settings: Settings, path: Path, batch_size: int) -> int:
    from coves.db.migrate import migrate
    from coves.db.tooling import tool_database
    from coves.ingest.build import build_indexer
    from coves.ingest.events import Reason
    from coves.metrics import Metrics

    async with tool_database(settings, pool_size=2) as db:
        await migrate(db)
        indexer = build_indexer(
            db=db,
            instance_did=settings.instance_did,
            skip_did_web_verification=settings.skip_did_web_verification,
            metrics=Metrics(),
        )
        summary = await replay(indexer, path, batch_size=batch_size, progress=Progress())
    reasons = frozenset(value for name, value in vars(Reason).items() if not name.startswith("_"))
    print(summary.render(reasons))
    return 0


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["replay"] = (
        "apply a captured Jetstream stream (JSON lines, optionally .zst) to the database",
        configure,
        run,
    )


_register()
