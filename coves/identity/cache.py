"""A bounded LRU whose entries expire on Trio's clock.

Shared by the identity cache and the did:web verifier: bounded so hostile
input (many distinct DIDs) cannot grow memory, and on ``coves.clock`` so
tests step TTLs with MockClock.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from coves import clock

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if clock.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set(self, key: K, value: V, ttl: float) -> None:
        self._entries[key] = (clock.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
