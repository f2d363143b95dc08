"""Stage the next batch while the current one commits.

A batch goes through two steps (``coves.ingest.types.Sink``): ``stage`` is the
work that writes nothing (parsing JSON, decoding a firehose frame's CBOR and
CAR, checking signatures, fetching a ``tooBig`` record) and ``commit`` the
transaction that applies the batch with its cursor. Run one after the other,
the database idles while the next batch is decoded and the decoder idles
while the database commits: the firehose path, whose staging costs more than
Jetstream's JSON, fell to 0.75x of the Jetstream path's rate that way
(docs/performance.md). Here staging runs one batch ahead of committing.

Order and the cursor are unchanged: batches are staged in order and committed
in order, each with its own cursor, so a failure anywhere leaves the durable
cursor at the last committed batch, and the batch staged ahead is dropped
with the rest of what was received (the stream delivers it again on resume).
At most one staged batch waits: memory stays bounded and a slow database
still slows the reader through the frame channel upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any

import trio

from coves import clock
from coves.excgroups import single_errors
from coves.ingest.types import BatchResult, Frame, Sink


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

    async def stager() -> None:
        iterator = aiter(batches)
        try:
            async with send:
                async for batch in iterator:
                    staged = await sink.stage(batch)
                    try:
                        await send.send((batch, staged))
                    except trio.BrokenResourceError:
                        return  # the committer failed; its error is the one raised
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
                result = await sink.commit(staged)
                done(batch, result, clock.monotonic() - started)
