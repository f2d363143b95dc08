"""``coves replay FILE``: feed a captured Jetstream stream through the indexer.

The file is JSON lines (one Jetstream message per line), optionally
zstd-compressed (``.zst`` suffix or the zstd magic number). Frames go through
the very same :class:`~coves.ingest.indexer.Indexer` and batch size as the
live consumer, so a replay reproduces exactly what live ingestion would have
indexed; it is also how the ingestion benchmark measures throughput.

A replay never moves the live consumer's cursor: the file is not the stream
the consumer resumes, and a cursor moved by a replay would skip (or repeat)
live events. It can run while ``coves serve`` runs on the same data
directory: it then uses that instance's database, and its batches take the
same writers' lock as the consumer's, so the two interleave batch by batch.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
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
    return _open(path)[0]


def _open(path: Path) -> tuple[IO[bytes], int]:
    """The line reader and the descriptor of the file itself (its offset is the progress)."""
    raw = path.open("rb")
    head = raw.peek(4)[:4] if isinstance(raw, io.BufferedReader) else b""
    if path.suffix == ".zst" or head == ZSTD_MAGIC:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=1 << 20), raw.fileno()
    return raw, raw.fileno()


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
    """A progress bar on one self-overwriting stderr line (plain lines when not a TTY).

    The fraction done is the offset reached in the file (compressed bytes for
    a .zst capture), so the bar and the estimate need no first pass to count
    the events.
    """

    WIDTH = 24

    def __init__(self, out: TextIO = sys.stderr, interval: float | None = None) -> None:
        self._out = out
        self._tty = out.isatty()
        # A terminal is redrawn often; a log file gets a line every few seconds.
        self._interval = interval if interval is not None else (0.2 if self._tty else 5.0)
        self._last = -self._interval
        self._shown = ""

    def update(
        self, events: int, elapsed: float, *, fraction: float | None = None, final: bool = False
    ) -> None:
        now = clock.monotonic()
        if not final and now - self._last < self._interval:
            return
        self._last = now
        text = render_progress(events, elapsed, 1.0 if final else fraction, self.WIDTH)
        if text == self._shown and not self._tty:
            return  # a log file gets no repeated lines
        self._shown = text
        if self._tty:
            self._out.write("\r" + text + ("\n" if final else ""))
        else:
            self._out.write(text + "\n")
        self._out.flush()


def render_progress(events: int, elapsed: float, fraction: float | None, width: int = 24) -> str:
    rate = events / elapsed if elapsed > 0 else 0.0
    text = f"{events:,} events  {rate:,.0f} events/s"
    if fraction is None:
        return "replay: " + text
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    bar = "#" * filled + "-" * (width - filled)
    eta = ""
    if 0 < fraction < 1 and elapsed > 0:
        remaining = elapsed * (1 - fraction) / fraction
        minutes, seconds = divmod(int(remaining), 60)
        eta = f"  ETA {minutes}:{seconds:02d}"
    return f"replay [{bar}] {fraction * 100:3.0f}%  {text}{eta}"


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

    def render(self, examples: Sequence[tuple[str, str | None, int]] = ()) -> str:
        """The summary; ``examples`` are (reason, detail, count) of the letters written."""
        from coves.ingest.reasons import describe, is_dead_letter

        lines = [
            f"events:        {self.events:,}",
            f"applied:       {self.applied:,}",
            f"skipped:       {self.skipped:,}",
            f"dead-lettered: {self.dead_lettered:,}",
        ]
        dead = sorted((r, n) for r, n in self.reasons.items() if is_dead_letter(r))
        skipped = sorted((r, n) for r, n in self.reasons.items() if not is_dead_letter(r))
        if dead:
            lines.append("why events were dead-lettered:")
            for reason, count in dead:
                lines.append(f"  {reason}: {count:,} ({describe(reason)})")
                for ex_reason, detail, n in examples:
                    if ex_reason == reason and detail:
                        lines.append(f"      {n:,} x {detail[:160]}")
            lines.append("  inspect them: coves dead-letters list --reason REASON")
        if skipped:
            lines.append("why events were skipped:")
            for reason, count in skipped:
                lines.append(f"  {reason}: {count:,} ({describe(reason)})")
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
    stream, fd = await trio.to_thread.run_sync(_open, path)
    size = max(1, os.fstat(fd).st_size)
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
            done = os.lseek(fd, 0, os.SEEK_CUR) / size
            progress.update(summary.events, summary.elapsed, fraction=done)

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
    if frames is None:
        return None
    batch = indexer.prepare(frames)
    batch.cursor = None  # a replay never moves the live consumer's cursor
    return batch


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
    from coves.excgroups import first_leaf

    found = first_leaf(exc, (zstandard.ZstdError, UnicodeDecodeError, OSError, DatabaseError))
    if found is None:
        return None
    if isinstance(found, DatabaseError):
        return f"database unavailable: {found}"
    return f"cannot read the stream: {found}"


async def _main(settings: Settings, path: Path, batch_size: int) -> int:
    from coves.db.migrate import migrate
    from coves.db.queries import ops as q
    from coves.ingest.build import build_indexer
    from coves.metrics import Metrics
    from coves.ops.database import operator_database

    async with operator_database(settings) as (db, attached):
        if attached.shared_with_server:
            print(
                "coves replay: using the running instance's database; "
                "the live consumer's cursor is not moved",
                file=sys.stderr,
            )
        else:
            await migrate(db)
        letters_before = await q.newest_dead_letter_id(db)
        indexer = build_indexer(
            db=db,
            instance_did=settings.instance_did,
            skip_did_web_verification=settings.skip_did_web_verification,
            metrics=Metrics(),
        )
        summary = await replay(indexer, path, batch_size=batch_size, progress=Progress())
        await q.flush_commits(db)
        examples = []
        if summary.dead_lettered:
            rows = await q.dead_letter_details_since(db, letters_before)
            examples = [(r["reason"], r["detail"], r["n"]) for r in rows]
    print(summary.render(examples))
    return 0


def _register() -> None:
    from coves.cli import EXTRA_COMMANDS

    EXTRA_COMMANDS["replay"] = (
        "apply a captured Jetstream stream (JSON lines, optionally .zst) to the database",
        configure,
        run,
    )


_register()
