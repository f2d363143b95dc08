"""A token bucket on Trio's clock, for pacing outbound fetches."""

from __future__ import annotations

import trio

from coves import clock


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; :meth:`acquire` waits."""

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None
        self._lock = trio.Lock()  # FIFO: waiters are served in arrival order

    def _refill(self) -> None:
        now = clock.monotonic()
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self) -> bool:
        self._refill()
        if self._tokens >= 1 - 1e-9:  # float refills land a hair under whole tokens
            self._tokens = max(self._tokens - 1, 0.0)
            return True
        return False

    async def acquire(self) -> None:
        async with self._lock:
            while not self.try_acquire():
                await trio.sleep(max((1 - self._tokens) / self.rate, 1e-3))
