"""Stage the next batch while the current one commits.

A batch goes through two steps (``coves.ingest.types.Sink``): ``stage`` is the
work that writes nothing (parsing JSON, decoding a firehose frame's CBOR and
CAR, checking signatures, fetching a ``tooBig`` record) and ``commit`` the
transaction that applies the batch with its cursor. Run one after the other,
the database idles while the next batch is decoded and the decoder idles
while the database commits. Here staging runs one batch ahead of committing.

Where the staging CPU runs matters as much as when. In a thread of its own it
competes for the GIL with the database thread that is sending the current
batch's statements and reading their results: that thread waits for the GIL
at every round trip, the server waits for it, and the commit gets slower by
about as much as the staging costs (measured: nothing gained, docs/performance.md;
``coves replay`` found the same). So the CPU part of staging is handed to the
commit's own database thread (:class:`Overlap`, the indexer's ``meanwhile``
hook), which runs it once every statement of the current batch has been sent,
while the server executes them. Work that arrives when no commit is in
flight, or that the hook did not get to, runs in a worker thread as before.

Order and the cursor are unchanged: batches are staged in order and committed
in order, each with its own cursor, so a failure anywhere leaves the durable
cursor at the last committed batch, and the batch staged ahead is dropped
with the rest of what was received (the stream delivers it again on resume).
At most one staged batch waits: memory stays bounded and a slow database
still slows the reader through the frame channel upstream.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from coves import clock
from coves.excgroups import single_errors
from coves.ingest.types import BatchResult, Frame, Sink

T = TypeVar("T")


@dataclass(eq=False)
class _Job:
    work: Callable[[], Any]
    token: trio.lowlevel.TrioToken
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None

    def run(self) -> None:
        """Run in whichever thread took the job; report back to Trio."""
        try:
            self.result = self.work()
        except BaseException as exc:  # re-raised in the task that asked for the work
            self.error = exc
        with contextlib.suppress(trio.RunFinishedError):  # nobody is waiting any more
            self.token.run_sync_soon(self.done.set)


class Overlap:
    """CPU work for the next batch, run by the current commit's database thread.

    ``run(fn, *args)`` is what a sink's ``stage`` calls for its CPU-bound
    steps; ``hook`` is the ``meanwhile`` given to the commit in flight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[_Job] = deque()
        self._open = False  # a commit is in flight and will call ``hook``

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._open:
            return await trio.to_thread.run_sync(fn, *args)
        job = _Job(lambda: fn(*args), trio.lowlevel.current_trio_token())
        with self._lock:
            self._jobs.append(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def hook(self) -> None:
        """The commit's ``meanwhile``: run what is waiting (database thread; never raises)."""
        while True:
            with self._lock:
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            job.run()

    def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        """The commit ended: what its hook did not take runs in a worker thread."""
        self._open = False
        with self._lock:
            left = list(self._jobs)
            self._jobs.clear()
        for job in left:
            await trio.to_thread.run_sync(job.run)

    def abandon(self) -> None:
        """The commit failed: the stage waiting on these jobs is being cancelled."""
        self._open = False
        with self._lock:
            self._jobs.clear()


async def run_pipelined(
    sink: Sink,
    batches: AsyncIterable[Sequence[Frame]],
    done: Callable[[Sequence[Frame], BatchResult, float], None],
) -> None:
    """Stage and commit every batch ``batches`` yields, then return.

    ``done(batch, result, seconds)`` runs after each commit, in order, with
    the seconds the commit took. An exception from either step (a
    ``DatabaseError``, a sink bug) stops both and is raised bare, not wrapped
    in the nursery's group, so callers handle it as they would from a plain
    ``await sink.commit(...)``.
    """
    send, recv = trio.open_memory_channel[tuple[Sequence[Frame], Any]](0)
    overlap = Overlap()

    async def stager() -> None:
        iterator = aiter(batches)
        try:
            async with send:
                async for batch in iterator:
                    staged = await sink.stage(batch, overlap.run)
                    try:
                        await send.send((batch, staged))
                    except trio.BrokenResourceError:
                        return  # the committer failed; its error is the one raised
                    # Let the committer open the overlap for the batch just handed
                    # over before the next one asks for CPU (correct either way).
                    await trio.lowlevel.checkpoint()
        finally:
            # A generator left at its ``yield`` by a failure or a cancel is closed
            # here, not later by the garbage collector outside any task.
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True):
                    await aclose()

    async with single_errors(), trio.open_nursery() as nursery:
        nursery.start_soon(stager)
        async with recv:
            async for batch, staged in recv:
                started = clock.monotonic()
                overlap.open()
                try:
                    result = await sink.commit(staged, overlap.hook)
                except BaseException:
                    overlap.abandon()
                    raise
                seconds = clock.monotonic() - started
                await overlap.close()
                done(batch, result, seconds)
