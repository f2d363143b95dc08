"""The single clock.

Timers, backoff, TTLs and schedules use Trio's clock (``trio.current_time``)
so tests drive them with ``MockClock``. Some values must still be wall-clock
instants (JWT ``exp``, cursor snapshots, ``created_at``); those read
:func:`wall_now`, which is anchored to Trio's clock when one is running, so
a test that jumps the mock clock moves wall time by the same amount.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import trio


class _Anchor:
    """(Trio time, wall time) pairing, re-taken for each Trio run."""

    token: object | None = None
    trio_time: float = 0.0
    wall_time: float = 0.0


def monotonic() -> float:
    """Seconds on Trio's clock (mockable)."""
    return trio.current_time()


def wall_now() -> float:
    """Unix seconds, advancing with Trio's clock inside a run, real time outside."""
    try:
        now = trio.current_time()
        token = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return time.time()
    if _Anchor.token is not token:
        _Anchor.token, _Anchor.trio_time, _Anchor.wall_time = token, now, time.time()
    return _Anchor.wall_time + (now - _Anchor.trio_time)


def utcnow() -> datetime:
    return datetime.fromtimestamp(wall_now(), UTC)
