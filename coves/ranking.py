"""Python mirror of the SQL rank functions in ``0001_core.sql``.

The database stores ``hot_rank`` and ``controversy_rank`` so feeds are served
straight from an index; this module exists so tests (and anyone reasoning
about ordering) can compute the same numbers without a database. See
``docs/ranking.md`` for why the hot rank is time-independent.
"""

from __future__ import annotations

import math
from datetime import datetime

# 2024-01-01T00:00:00Z: only shifts every rank by a constant, keeps the
# numbers small enough that double precision keeps sub-second resolution.
RANK_EPOCH = 1704067200
# Seconds of recency worth one order of magnitude of score (12.5 hours).
DECAY_SECONDS = 45000.0


def hot_rank(score: int, ranked_at: datetime) -> float:
    """``sign(s)·log10(max(|s|, 1)) + (ranked_at - epoch) / 45000``."""
    sign = (score > 0) - (score < 0)
    order = math.log10(max(abs(score), 1))
    return sign * order + (ranked_at.timestamp() - RANK_EPOCH) / DECAY_SECONDS


def controversy_rank(ups: int, downs: int) -> float:
    """Reddit's controversy: high when many votes are split evenly, 0 unless both sides voted."""
    if ups <= 0 or downs <= 0:
        return 0.0
    return float((ups + downs) ** (min(ups, downs) / max(ups, downs)))


def ranked_at(created_at: datetime, first_indexed_at: datetime) -> datetime:
    """The instant a post ranks by: a future-dated ``createdAt`` earns no boost."""
    return min(created_at, first_indexed_at)
