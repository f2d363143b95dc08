"""Edge cases of atproto datetime parsing that once escaped as exceptions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coves.atproto.syntax import format_datetime, parse_datetime


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",  # past datetime.max once converted to UTC
        "0001-01-01T00:00:00+23:59",  # before datetime.min once converted to UTC
        "2024-02-30T00:00:00Z",
        "2024-01-01T00:00:00",  # no timezone
        "not a date",
    ],
)
def test_unrepresentable_or_invalid_datetimes_are_none(value: str) -> None:
    assert parse_datetime(value) is None


def test_fraction_beyond_microseconds_and_offsets() -> None:
    parsed = parse_datetime("2024-05-06T07:08:09.123456789+02:00")
    assert parsed == datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=UTC)
    assert format_datetime(parsed) == "2024-05-06T05:08:09.123Z"
