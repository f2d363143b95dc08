"""A small time-bounded cache on Trio's clock (MockClock-friendly)."""

from __future__ import annotations

from typing import Generic, TypeVar

from coves.clock import monotonic

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """Entries expire ``ttl`` seconds after they were stored; the oldest half is
    dropped when ``max_entries`` is exceeded (insertion order is age order)."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._data: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if monotonic() - hit[0] >= self.ttl:
            del self._data[key]
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = (monotonic(), value)
        if len(self._data) > self._max:
            for old in list(self._data)[: len(self._data) // 2]:
                del self._data[old]

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
