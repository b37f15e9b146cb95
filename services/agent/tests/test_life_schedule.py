"""Posting schedule: gaps within [min, max], peak hours favoured by the draw, the too-soon rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from puppet_agent.life.schedule import HOUR_S, PostFrequency, next_post_time, too_soon

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC).timestamp()


def test_gaps_stay_within_min_and_max():
    freq = PostFrequency(
        min_hours=3, max_hours=12, peak_hours=frozenset({9, 10}), jitter_minutes=30
    )
    rng = random.Random(1)
    for i in range(2000):
        now = T0 + i * 977.0
        gap = next_post_time(freq, now=now, rng=rng, tz=UTC) - now
        assert 3 * HOUR_S <= gap <= 12 * HOUR_S


def test_peak_hours_attract_posts_beyond_their_share_of_the_clock():
    peak = frozenset({9, 10, 11, 12, 13, 14})
    weighted = PostFrequency(min_hours=1, max_hours=47, peak_hours=peak, peak_weight=3)
    flat = PostFrequency(min_hours=1, max_hours=47)
    rng = random.Random(7)

    def share(freq: PostFrequency) -> float:
        hits = 0
        for i in range(4000):
            now = T0 + i * 1234.5
            at = next_post_time(freq, now=now, rng=rng, tz=UTC)
            hits += datetime.fromtimestamp(at, UTC).hour in peak
        return hits / 4000

    assert share(flat) == pytest.approx(6 / 24, abs=0.03)
    assert share(weighted) == pytest.approx(3 * 6 / (3 * 6 + 18), abs=0.04)


def test_the_draw_is_weighted_not_just_the_gap_shortened():
    # Starting outside a peak hour, a window covering one peak hour still lands there more often.
    freq = PostFrequency(
        min_hours=0, max_hours=4, peak_hours=frozenset({2}), peak_weight=5, jitter_minutes=0
    )
    rng = random.Random(3)
    hits = sum(
        datetime.fromtimestamp(next_post_time(freq, now=T0, rng=rng, tz=UTC), UTC).hour == 2
        for _ in range(2000)
    )
    assert hits / 2000 == pytest.approx(5 / 8, abs=0.04)


def test_the_window_starts_at_the_last_post_and_an_overdue_persona_spreads_from_now():
    freq = PostFrequency(min_hours=2, max_hours=4, jitter_minutes=0)
    rng = random.Random(5)
    at = next_post_time(freq, now=T0 + HOUR_S, last_post=T0, rng=rng, tz=UTC)
    assert T0 + 2 * HOUR_S <= at <= T0 + 4 * HOUR_S
    late = T0 + 100 * HOUR_S
    at = next_post_time(freq, now=late, last_post=T0, rng=rng, tz=UTC)
    assert late <= at <= late + 2 * HOUR_S


def test_same_seed_same_schedule():
    freq = PostFrequency(min_hours=0.33, max_hours=1.0, peak_hours=frozenset({3, 9}))
    first = [next_post_time(freq, now=T0, rng=random.Random(42), tz=UTC) for _ in range(3)]
    assert len(set(first)) == 1


def test_too_soon_unless_forced():
    freq = PostFrequency(min_hours=3, max_hours=12)
    assert not too_soon(freq, now=T0, last_post=None)
    assert too_soon(freq, now=T0 + 2.9 * HOUR_S, last_post=T0)
    assert not too_soon(freq, now=T0 + 2.9 * HOUR_S, last_post=T0, force=True)
    assert not too_soon(freq, now=T0 + 3 * HOUR_S, last_post=T0)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_hours": 5, "max_hours": 1}, {"peak_hours": frozenset({24})}, {"peak_weight": 0.5}],
)
def test_bad_rhythms_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"must be|need"):
        PostFrequency(**kwargs)
