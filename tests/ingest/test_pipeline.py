"""Staging one batch ahead of the commit (coves.ingest.pipeline), under MockClock."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import trio
import trio.testing

from coves.db import DatabaseUnavailable
from coves.ingest.pipeline import Overlap, run_pipelined
from coves.ingest.types import BatchResult, CpuRunner, Frame


class TimedSink:
    """Staging and committing each take a fixed time; checks neither step overlaps itself."""

    def __init__(self, stage_s: float = 1.0, commit_s: float = 1.0) -> None:
        self.stage_s, self.commit_s = stage_s, commit_s
        self.staging = 0
        self.committing = 0
        self.staged: list[int] = []
        self.committed: list[int] = []
        self.fail_commit_at: int | None = None
        self.fail_stage_at: int | None = None
        self.stage_error: BaseException = DatabaseUnavailable("stage: connection refused")

    async def load_cursor(self) -> int | None:
        return None

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner) -> int:
        number = int(frames[0].data)
        assert self.staging == 0, "stages never overlap each other"
        self.staging += 1
        try:
            await trio.sleep(self.stage_s)
            if number == self.fail_stage_at:
                raise self.stage_error
            self.staged.append(number)
            return number
        finally:
            self.staging -= 1

    async def commit(self, number: int, meanwhile: Callable[[], None] | None) -> BatchResult:
        assert self.committing == 0, "commits never overlap each other"
        self.committing += 1
        try:
            await trio.sleep(self.commit_s)
            if number == self.fail_commit_at:
                raise DatabaseUnavailable("commit: connection lost")
            self.committed.append(number)
            return BatchResult(1, 1, 0, 0, number)
        finally:
            self.committing -= 1


async def numbered(n: int) -> AsyncIterator[list[Frame]]:
    for i in range(n):
        yield [Frame(str(i), 0.0)]


async def test_the_next_batch_is_staged_while_this_one_commits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = TimedSink()
    results: list[tuple[int | None, float]] = []
    started = trio.current_time()
    with trio.fail_after(100):
        await run_pipelined(sink, numbered(10), lambda _b, r, s: results.append((r.cursor, s)))
    # One after the other: 10 x (1 + 1) = 20 s. Overlapped: the first stage, then
    # ten commits each hiding the next stage.
    assert trio.current_time() - started == pytest.approx(11.0)
    assert sink.committed == list(range(10))
    assert [cursor for cursor, _ in results] == list(range(10))  # in order
    assert all(seconds == pytest.approx(1.0) for _, seconds in results)  # commit time


async def test_at_most_one_batch_is_staged_ahead(autojump_clock: trio.testing.MockClock) -> None:
    sink = TimedSink(stage_s=0.1, commit_s=5.0)  # a slow database
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_pipelined, sink, numbered(10), lambda *_: None)
            await trio.sleep(2.0)  # batch 0 committing
            assert sink.staged == [0, 1]
            assert sink.committed == []
            await trio.sleep(5.0)  # batch 1 committing
            assert sink.staged == [0, 1, 2]
            assert sink.committed == [0]
    assert sink.committed == list(range(10))


async def test_a_failed_commit_stops_staging_and_raises_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = TimedSink()
    sink.fail_commit_at = 3
    done: list[int | None] = []
    with trio.fail_after(100), pytest.raises(DatabaseUnavailable, match="commit"):
        await run_pipelined(sink, numbered(10), lambda _b, r, _s: done.append(r.cursor))
    assert sink.committed == [0, 1, 2]
    assert done == [0, 1, 2]  # nothing reported for the failed batch or after it
    assert sink.staged == [0, 1, 2, 3, 4]  # batch 4 was staged ahead, then dropped


async def test_a_failed_stage_lets_earlier_batches_commit_then_raises_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = TimedSink(stage_s=0.1, commit_s=5.0)
    sink.fail_stage_at = 2
    with trio.fail_after(100), pytest.raises(DatabaseUnavailable, match="stage"):
        await run_pipelined(sink, numbered(10), lambda *_: None)
    # The failure cancels the commit in progress: batch 0 had committed, batch 1
    # had not (its commit was still running), and nothing later was attempted.
    assert sink.committed == [0]
    assert sink.staged == [0, 1]


async def test_a_bug_in_staging_is_raised_as_itself(autojump_clock: trio.testing.MockClock) -> None:
    sink = TimedSink()
    sink.fail_stage_at = 0
    sink.stage_error = KeyError("a sink bug")
    with trio.fail_after(100), pytest.raises(KeyError, match="a sink bug"):
        await run_pipelined(sink, numbered(3), lambda *_: None)
    assert sink.committed == []


async def test_an_empty_stream_commits_nothing(autojump_clock: trio.testing.MockClock) -> None:
    sink = TimedSink()
    with trio.fail_after(10):
        await run_pipelined(sink, numbered(0), lambda *_: None)
    assert sink.staged == sink.committed == []


async def test_cancelling_from_outside_stops_both_steps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = TimedSink()
    with trio.fail_after(100):
        with trio.move_on_after(3.5):
            await run_pipelined(sink, numbered(10), lambda *_: None)
    assert sink.committed == [0, 1]
    assert sink.staging == sink.committing == 0


# -- where the staging CPU runs (real threads, real clock) ---------------------------------


class ThreadedSink:
    """Commits in a worker thread like the indexer: statements "sent", then the
    ``meanwhile`` hook, then the server's time; staging asks ``cpu`` for its work."""

    def __init__(self) -> None:
        self.commit_threads: list[int] = []
        self.stage_threads: list[int] = []
        self.hook_calls = 0

    async def load_cursor(self) -> int | None:
        return None

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner) -> int:
        number = int(frames[0].data)
        await cpu(lambda: self.stage_threads.append(threading.get_ident()))
        return number

    async def commit(self, number: int, meanwhile: Callable[[], None] | None) -> BatchResult:
        def in_database_thread() -> None:
            self.commit_threads.append(threading.get_ident())
            time.sleep(0.005)  # building and sending the statements
            if meanwhile is not None:
                self.hook_calls += 1
                meanwhile()
            time.sleep(0.02)  # the server executes them

        await trio.to_thread.run_sync(in_database_thread)
        return BatchResult(1, 1, 0, 0, number)


async def test_staging_cpu_runs_in_the_previous_commits_database_thread() -> None:
    sink = ThreadedSink()
    with trio.fail_after(30):
        await run_pipelined(sink, numbered(12), lambda *_: None)
    assert len(sink.stage_threads) == len(sink.commit_threads) == 12
    # Batch 0 has no commit before it: a worker thread. Each later batch's CPU should
    # have run inside the hook of the commit before it, in that commit's thread.
    in_hook = sum(
        stage == commit
        for stage, commit in zip(sink.stage_threads[1:], sink.commit_threads[:-1], strict=True)
    )
    assert in_hook >= 8, (in_hook, sink.stage_threads, sink.commit_threads)
    assert sink.hook_calls == 12


async def test_overlap_runs_in_a_worker_thread_when_no_commit_is_in_flight() -> None:
    overlap = Overlap()
    with trio.fail_after(10):
        ident = await overlap.run(threading.get_ident)
    assert ident != threading.get_ident()


async def test_overlap_hands_work_to_the_hook_and_returns_its_result_or_error() -> None:
    overlap = Overlap()
    overlap.open()
    results: dict[str, object] = {}

    async def ask(name: str, fn: Callable[[], object]) -> None:
        try:
            results[name] = await overlap.run(fn)
        except ValueError as exc:
            results[name] = exc

    def boom() -> object:
        raise ValueError("staging bug")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "ok", threading.get_ident)
            nursery.start_soon(ask, "bad", boom)
            await trio.testing.wait_all_tasks_blocked()
            assert results == {}  # waiting for the commit's hook
            hook_thread = await trio.to_thread.run_sync(
                lambda: (overlap.hook(), threading.get_ident())[1]
            )
        await overlap.close()
    assert results["ok"] == hook_thread
    assert isinstance(results["bad"], ValueError)


async def test_overlap_runs_what_the_hook_did_not_take_when_the_commit_ends() -> None:
    overlap = Overlap()
    overlap.open()
    results: list[int] = []

    async def ask() -> None:
        results.append(await overlap.run(lambda: 42))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            await overlap.close()  # the commit wrote nothing: no hook ran
    assert results == [42]
    assert await overlap.run(lambda: 7) == 7  # closed: straight to a worker thread


async def test_a_failed_commit_abandons_the_work_waiting_for_its_hook() -> None:
    sink = ThreadedSink()
    ran: list[int] = []

    async def failing_commit(number: int, meanwhile: Callable[[], None] | None) -> BatchResult:
        if number == 1:
            raise DatabaseUnavailable("lost")  # before its hook ever runs
        return await ThreadedSink.commit(sink, number, meanwhile)

    async def recording_stage(frames: Sequence[Frame], cpu: CpuRunner) -> int:
        number = int(frames[0].data)
        await cpu(lambda: ran.append(number))
        return number

    sink.commit = failing_commit  # type: ignore[method-assign]
    sink.stage = recording_stage  # type: ignore[method-assign]
    with trio.fail_after(10), pytest.raises(DatabaseUnavailable):
        await run_pipelined(sink, numbered(5), lambda *_: None)
    assert 3 not in ran and 4 not in ran
