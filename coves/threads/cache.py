"""A short-lived, shared cache of assembled comment threads.

A popular thread is read by many clients at once, and building it is the
expensive part of getComments (several queries, then a view per comment).
Identical requests within ``ttl_seconds`` share one build: the first miss
computes, concurrent misses for the same key wait for it, and everyone gets
the same immutable result. Entries hold the anonymous view; per-viewer state
(votes) is overlaid by the caller, so one entry serves every viewer.

Staleness is bounded by the TTL (counts and new comments show up within
it); paging is unaffected because ranked pages read frozen snapshots.
Failures are not cached: a waiter whose leader failed computes itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import trio

from coves.clock import monotonic

T = TypeVar("T")


class ThreadCache(Generic[T]):
    def __init__(self, *, ttl_seconds: float = 2.0, max_entries: int = 128) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._inflight: dict[Hashable, trio.Event] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        if self.ttl_seconds <= 0:
            self.misses += 1
            return await compute()
        while True:
            entry = self._entries.get(key)
            if entry is not None and monotonic() - entry[0] < self.ttl_seconds:
                self.hits += 1
                self._entries.move_to_end(key)
                return entry[1]
            waiting = self._inflight.get(key)
            if waiting is None:
                break
            await waiting.wait()
        done = trio.Event()
        self._inflight[key] = done
        self.misses += 1
        try:
            value = await compute()
            self._entries[key] = (monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return value
        finally:
            del self._inflight[key]
            done.set()

    def __len__(self) -> int:
        return len(self._entries)
