"""Ranking properties, for the Python mirror and the SQL functions alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from coves import ranking
from coves.db import Database

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("score", "at"),
    [(0, T0), (1, T0), (-1, T0), (7, T0 - 5 * HOUR), (-250, T0 + 3 * HOUR), (10**6, T0)],
)
async def test_python_mirror_matches_sql(db: Database, score: int, at: datetime) -> None:
    with trio.fail_after(10):
        sql = await db.fetchval("SELECT coves_hot_rank(%s, %s)", (score, at))
    assert sql == pytest.approx(ranking.hot_rank(score, at), abs=1e-9)


@pytest.mark.parametrize(("ups", "downs"), [(0, 0), (5, 0), (0, 5), (5, 5), (10, 3), (3, 10)])
async def test_controversy_mirror_matches_sql(db: Database, ups: int, downs: int) -> None:
    with trio.fail_after(10):
        sql = await db.fetchval("SELECT coves_controversy_rank(%s, %s)", (ups, downs))
    assert sql == pytest.approx(ranking.controversy_rank(ups, downs))


def test_equal_score_newer_ranks_higher() -> None:
    for score in (-10, 0, 1, 50):
        assert ranking.hot_rank(score, T0 + HOUR) > ranking.hot_rank(score, T0)


def test_equal_age_higher_score_ranks_higher() -> None:
    scores = [-100, -5, 0, 2, 10, 1000]
    ranks = [ranking.hot_rank(s, T0) for s in scores]
    assert ranks == sorted(ranks)
    assert ranking.hot_rank(1, T0) == ranking.hot_rank(0, T0)  # log10(1) = 0


def test_ten_times_the_score_is_worth_twelve_and_a_half_hours() -> None:
    older = ranking.hot_rank(100, T0)
    newer = ranking.hot_rank(10, T0 + timedelta(hours=12.5))
    assert older == pytest.approx(newer)


def test_negative_post_never_outranks_a_newer_non_negative_one() -> None:
    for age_hours in (0, 1, 24, 24 * 365):
        negative = ranking.hot_rank(-3, T0 - age_hours * HOUR)
        assert ranking.hot_rank(0, T0) > negative


def test_negative_post_never_rises_as_it_ages() -> None:
    # The rank is fixed once stored; newer posts arriving only push it down.
    # What must never happen (Coves-Go's inversion) is a later-computed rank
    # for the same post being higher: the formula has no "now" in it.
    first = ranking.hot_rank(-20, T0)
    assert ranking.hot_rank(-20, T0) == first
    assert ranking.hot_rank(-20, T0 - HOUR) < first


def test_future_dated_posts_get_no_boost() -> None:
    indexed = T0
    claimed = T0 + timedelta(days=30)
    at = ranking.ranked_at(claimed, indexed)
    assert at == indexed
    assert ranking.hot_rank(5, at) == ranking.hot_rank(5, indexed)


def test_controversy_needs_both_sides() -> None:
    assert ranking.controversy_rank(100, 0) == 0.0
    assert ranking.controversy_rank(0, 100) == 0.0
    assert ranking.controversy_rank(50, 50) > ranking.controversy_rank(90, 10)
    assert ranking.controversy_rank(50, 50) > ranking.controversy_rank(5, 5)
