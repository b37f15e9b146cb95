"""When a persona posts next: a gap drawn between min and max hours, weighted toward peak hours.

The legacy scheduler drew ``min + U*(max - min)`` hours and only shortened the gap when the
*current* hour was a peak hour, so peak hours barely changed *when* posts landed. Here the draw
itself is weighted: every instant of the ``[min, max]`` window has density ``peak_weight`` inside
a peak hour and 1 outside, so posts really do cluster in peak hours. Jitter then blurs the exact
minute, and the result is clamped back into the window, so a gap is never shorter than
``min_hours``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

HOUR_S = 3600.0


@dataclass(frozen=True)
class PostFrequency:
    """A persona's posting rhythm (legacy ``behavior.post_frequency`` plus two knobs).

    Attributes:
        min_hours: The shortest gap between two posts; also the "too soon" threshold.
        max_hours: The longest gap between two posts.
        peak_hours: Local hours (0-23) in which posting is more likely.
        peak_weight: How much more likely an instant inside a peak hour is than one outside.
        jitter_minutes: A post time moves by up to this many minutes either way (then clamped).
    """

    min_hours: float = 3.0
    max_hours: float = 12.0
    peak_hours: frozenset[int] = frozenset()
    peak_weight: float = 3.0
    jitter_minutes: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_hours <= self.max_hours:
            raise ValueError(
                f"need 0 <= min_hours <= max_hours, got {self.min_hours}, {self.max_hours}"
            )
        if any(not 0 <= h <= 23 for h in self.peak_hours):
            raise ValueError(f"peak hours must be 0-23, got {sorted(self.peak_hours)}")
        if self.peak_weight < 1 or self.jitter_minutes < 0:
            raise ValueError("peak_weight must be >= 1 and jitter_minutes >= 0")


def next_post_time(
    freq: PostFrequency,
    *,
    now: float,
    rng: random.Random,
    last_post: float | None = None,
    tz: tzinfo | None = None,
) -> float:
    """The next post time (epoch seconds) for a persona.

    The window is ``[anchor + min_hours, anchor + max_hours]`` where the anchor is ``last_post``
    (or ``now`` when the persona never posted). A window already in the past (the persona is
    overdue, e.g. after a restart) is moved to start at ``now`` with the same width, so overdue
    personas spread out instead of all posting at once.

    Args:
        freq: The persona's rhythm.
        now: The current time, epoch seconds.
        rng: The randomness (seed it in tests).
        last_post: When the persona last posted, epoch seconds.
        tz: The zone that peak hours are in; None means the host's local zone (as legacy).
    """
    anchor = now if last_post is None else last_post
    lo, hi = anchor + freq.min_hours * HOUR_S, anchor + freq.max_hours * HOUR_S
    if hi < now:
        lo, hi = now, now + (hi - lo)
    lo = max(lo, now)
    at = _weighted_draw(freq, lo, hi, rng, tz)
    jitter = rng.uniform(-1.0, 1.0) * freq.jitter_minutes * 60.0
    return min(max(at + jitter, lo), hi)


def too_soon(
    freq: PostFrequency, *, now: float, last_post: float | None, force: bool = False
) -> bool:
    """True when a post now would come less than ``min_hours`` after the last (legacy refusal)."""
    if force or last_post is None:
        return False
    return now - last_post < freq.min_hours * HOUR_S


def _weighted_draw(
    freq: PostFrequency, lo: float, hi: float, rng: random.Random, tz: tzinfo | None
) -> float:
    """An instant in ``[lo, hi]`` drawn with density peak_weight in peak hours, 1 elsewhere."""
    if hi <= lo or not freq.peak_hours:
        return rng.uniform(lo, hi)
    pieces = [
        (a, b, freq.peak_weight if peak else 1.0) for a, b, peak in _hour_pieces(freq, lo, hi, tz)
    ]
    total = math.fsum((b - a) * w for a, b, w in pieces)
    target = rng.random() * total
    for a, b, w in pieces:
        mass = (b - a) * w
        if target < mass:
            return a + target / w
        target -= mass
    return hi


def _hour_pieces(
    freq: PostFrequency, lo: float, hi: float, tz: tzinfo | None
) -> Iterator[tuple[float, float, bool]]:
    """``[lo, hi]`` cut at local hour boundaries, each piece flagged peak or not."""
    start = lo
    while start < hi:
        local = datetime.fromtimestamp(start, tz).astimezone(tz)
        top = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        end = min(top.timestamp(), hi)
        if end <= start:
            end = min(start + HOUR_S, hi)
        yield start, end, local.hour in freq.peak_hours
        start = end
