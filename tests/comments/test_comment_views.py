"""View helpers (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from coves.atproto.syntax import format_datetime
from coves.read.views.comment import _ts


def test_timestamps_match_the_canonical_format() -> None:
    for value in (
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 5, 123999, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ):
        assert _ts(value) == format_datetime(value)
    assert _ts(datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))).endswith(
        "T12:00:00.000Z"
    )
