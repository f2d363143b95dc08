from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from coves.ingest.stream import (
    COLLECTIONS,
    REPLAY_WINDOW_SECONDS,
    detect_gap,
    resume_cursor,
    subscribe_url,
)

BASE = "wss://jetstream2.us-east.bsky.network/subscribe"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_url_asks_for_every_indexed_collection_and_nothing_lossy() -> None:
    url = subscribe_url(BASE)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "wss",
        "jetstream2.us-east.bsky.network",
        "/subscribe",
    )
    query = _query(url)
    assert query["wantedCollections"] == list(COLLECTIONS)
    assert set(COLLECTIONS) == {
        "social.coves.community.profile",
        "social.coves.community.subscription",
        "social.coves.community.block",
        "social.coves.actor.block",
        "social.coves.community.post",
        "social.coves.community.comment",
        "social.coves.feed.vote",
        "social.coves.actor.profile",
        "social.coves.aggregator.service",
        "social.coves.aggregator.authorization",
    }
    assert "cursor" not in query
    assert "maxMessageSizeBytes" not in url
    assert "compress" not in query


def test_url_carries_cursor_in_microseconds() -> None:
    assert _query(subscribe_url(BASE, cursor=1_725_000_000_123_456))["cursor"] == [
        "1725000000123456"
    ]


def test_url_keeps_operator_params_but_drops_size_cap_and_stale_cursor() -> None:
    url = subscribe_url(
        "ws://localhost:6008/subscribe?maxMessageSizeBytes=1000&cursor=5&wantedDids=did:plc:x",
        ("a.b.c", "a.b.c"),
        cursor=42,
    )
    query = _query(url)
    assert query == {"wantedDids": ["did:plc:x"], "wantedCollections": ["a.b.c"], "cursor": ["42"]}


@pytest.mark.parametrize(
    ("base", "collections", "cursor"),
    [
        ("https://example.com/subscribe", COLLECTIONS, None),
        ("wss://", COLLECTIONS, None),
        (BASE, (), None),
        (BASE, tuple(f"a.b.c{i}" for i in range(101)), None),
        (BASE, COLLECTIONS, -1),
    ],
)
def test_url_rejects_bad_input(base: str, collections: tuple[str, ...], cursor: int | None) -> None:
    with pytest.raises(ValueError):
        subscribe_url(base, collections, cursor)


def test_resume_cursor_rewinds() -> None:
    assert resume_cursor(None, 5.0) is None
    assert resume_cursor(10_000_000, 5.0) == 5_000_000
    assert resume_cursor(10_000_000, 0.0) == 10_000_000
    assert resume_cursor(1_000, 5.0) == 0  # never negative


def test_gap_only_beyond_the_replay_window() -> None:
    now = 2_000_000_000_000_000
    window_us = int(REPLAY_WINDOW_SECONDS * 1_000_000)
    assert detect_gap(None, now) is None
    assert detect_gap(now - window_us, now) is None
    assert detect_gap(now - 1_000_000, now) is None
    gap = detect_gap(now - window_us - 3_600_000_000, now)
    assert gap is not None
    assert gap.seconds == pytest.approx(3600.0)
    assert gap.oldest_available_us == now - window_us
