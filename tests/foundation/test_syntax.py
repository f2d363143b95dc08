"""Edge cases of atproto datetime parsing that once escaped as exceptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from coves.atproto import syntax
from coves.atproto.syntax import format_datetime, parse_datetime
from coves.lexicon import formats


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


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (syntax.is_valid_did, "did:plc:abc"),
        (syntax.is_valid_handle, "alice.example.com"),
        (syntax.is_valid_nsid, "social.coves.community.post"),
        (syntax.is_valid_rkey, "3kabc"),
        (syntax.is_valid_tid, "3kabcdefghijk"),
        (syntax.is_valid_cid, "bafyreiabc"),
        (syntax.is_valid_language, "en-GB"),
        (syntax.is_valid_hostname, "localhost"),
        (syntax.is_valid_domain, "coves.social"),
        (syntax.is_valid_community_name, "rust-news"),
    ],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(
    check: Callable[[str], bool], good: str
) -> None:
    """``$`` alone matches before a final newline; every check matches the whole value."""
    assert check(good)
    assert not check(good + "\n")
    assert parse_datetime("2024-01-01T00:00:00Z\n") is None
    assert formats.FORMATS["datetime"]("2024-01-01T00:00:00Z\n") is not None
    assert formats.FORMATS["uri"]("https://example.com\n") is not None
    assert formats.FORMATS["at-uri"]("at://did:plc:abc/a.b.c/x\n") is not None


@pytest.mark.parametrize(
    ("value", "name", "hostname", "domain"),
    [
        ("rust", True, True, False),
        ("Rust-News", True, True, False),
        ("coves.social", False, True, True),
        ("localhost", True, True, False),
        ("-rust", False, False, False),
        ("rust-", False, False, False),
        ("a" * 63, True, True, False),
        ("a" * 64, False, False, False),
        ("a_b", False, False, False),
        ("x." * 126 + "xy", False, False, False),  # 254 characters
        ("127.0.0.1", False, True, False),  # a name, but not a public domain
        ("", False, False, False),
    ],
)
def test_names_hosts_and_domains(value: str, name: bool, hostname: bool, domain: bool) -> None:
    assert syntax.is_valid_community_name(value) is name
    assert syntax.is_valid_hostname(value) is hostname
    assert syntax.is_valid_domain(value) is domain
