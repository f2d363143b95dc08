"""Remembering token ids so a captured token or proof cannot be replayed.

An entry lives until the token it describes expires (on Trio's clock), so
the cache only needs to cover each token's own lifetime. It is bounded:
when full, the oldest entries go first; lifetimes are short and bounded, so
insertion order is close to expiry order and the capacity is sized far above
any legitimate request rate.
"""

from __future__ import annotations

from collections import OrderedDict

from coves import clock


class ReplayCache:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; True when it was already recorded and live."""
        now = clock.monotonic()
        self._expire(now)
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return True
        self._seen[key] = now + max(ttl, 0.0)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        # Entries are mostly in expiry order; stop at the first live one.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                return
            del self._seen[key]
