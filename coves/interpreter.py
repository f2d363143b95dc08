"""Interpreter tuning applied when a server starts (never at import).

The GIL switch interval decides how long the event loop thread may keep
the GIL while a database worker thread has a result ready (and the other
way round). Python's default of 5 ms is long next to a read request's
sub-millisecond work; a shorter interval shortens those handoffs. See
``SWITCH_INTERVAL_SECONDS`` and docs/performance.md for the measurements.
"""

from __future__ import annotations

import sys


def apply_switch_interval(seconds: float) -> float | None:
    """Set ``sys.setswitchinterval`` (0: keep Python's default); return the previous value."""
    if seconds <= 0:
        return None
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    return previous
