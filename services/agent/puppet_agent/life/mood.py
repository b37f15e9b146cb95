"""Mood: valence, arousal and dominance, clamped, shifted by events, decaying toward a baseline.

Legacy clamps (CONTRACT §4.6): valence in [-1, 1], arousal and dominance in [0, 1]. Legacy mood
never decayed and reset on restart; here a mood relaxes toward the persona's baseline with a
half-life, and ``PersonaMood`` is a plain value the orchestrator can persist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_HALF_LIFE_S = 6 * 3600.0


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass(frozen=True)
class MoodShift:
    """A change to add to a mood (each part is clamped to [-1, 1] when applied)."""

    valence: float = 0.0
    arousal: float = 0.0
    dominance: float = 0.0


@dataclass(frozen=True)
class Mood:
    """A point in valence/arousal/dominance space; constructing one clamps it."""

    valence: float = 0.0
    arousal: float = 0.0
    dominance: float = 0.5

    def __post_init__(self) -> None:
        for name in ("valence", "arousal", "dominance"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"mood {name} must be a finite number")
        object.__setattr__(self, "valence", _clamp(self.valence, -1.0, 1.0))
        object.__setattr__(self, "arousal", _clamp(self.arousal, 0.0, 1.0))
        object.__setattr__(self, "dominance", _clamp(self.dominance, 0.0, 1.0))

    def shifted(self, shift: MoodShift) -> Mood:
        """This mood plus ``shift``, clamped (legacy ``updateMood``)."""
        return Mood(
            self.valence + _clamp(shift.valence, -1.0, 1.0),
            self.arousal + _clamp(shift.arousal, -1.0, 1.0),
            self.dominance + _clamp(shift.dominance, -1.0, 1.0),
        )

    def decayed(self, baseline: Mood, elapsed_s: float, half_life_s: float) -> Mood:
        """This mood after ``elapsed_s`` of exponential relaxation toward ``baseline``."""
        if elapsed_s <= 0:
            return self
        if half_life_s <= 0:
            return baseline
        keep = 0.5 ** (elapsed_s / half_life_s)
        return Mood(
            baseline.valence + (self.valence - baseline.valence) * keep,
            baseline.arousal + (self.arousal - baseline.arousal) * keep,
            baseline.dominance + (self.dominance - baseline.dominance) * keep,
        )

    def labels(self) -> tuple[str, ...]:
        """Words for this mood, one per axis, for prompts ("upbeat", "energetic", "assertive")."""
        valence = _band(self.valence, -0.6, -0.2, 0.2, 0.6, VALENCE_WORDS)
        arousal = _band(self.arousal, 0.2, 0.4, 0.6, 0.8, AROUSAL_WORDS)
        dominance = _band(self.dominance, 0.2, 0.4, 0.6, 0.8, DOMINANCE_WORDS)
        return valence, arousal, dominance

    def describe(self) -> str:
        """One phrase for composition, e.g. "upbeat, energetic and assertive"."""
        valence, arousal, dominance = self.labels()
        return f"{valence}, {arousal} and {dominance}"


VALENCE_WORDS = ("gloomy", "a bit down", "even-keeled", "upbeat", "elated")
AROUSAL_WORDS = ("drowsy", "calm", "alert", "energetic", "fired up")
DOMINANCE_WORDS = ("unsure of yourself", "tentative", "composed", "assertive", "commanding")


def _band(x: float, a: float, b: float, c: float, d: float, words: tuple[str, ...]) -> str:
    return words[sum(x >= edge for edge in (a, b, c, d))]


@dataclass(frozen=True)
class PersonaMood:
    """A persona's mood at ``updated_at``, its baseline and its half-life; a value to persist."""

    mood: Mood
    updated_at: float
    baseline: Mood = Mood()
    half_life_s: float = DEFAULT_HALF_LIFE_S

    def at(self, now: float) -> Mood:
        """The mood as of ``now`` (decayed since ``updated_at``)."""
        return self.mood.decayed(self.baseline, now - self.updated_at, self.half_life_s)

    def apply(self, shift: MoodShift, now: float) -> PersonaMood:
        """Decay to ``now``, then add ``shift``."""
        return replace(self, mood=self.at(now).shifted(shift), updated_at=now)


MOOD_PRESETS: Mapping[str, MoodShift] = {
    "sudden inspiration": MoodShift(0.3, 0.4, 0.2),
    "mild frustration": MoodShift(-0.2, 0.3, -0.1),
    "pleasant surprise": MoodShift(0.4, 0.3, 0.1),
    "brief melancholy": MoodShift(-0.3, -0.2, -0.1),
    "creative surge": MoodShift(0.3, 0.4, 0.3),
}
"""The legacy random mood events (CONTRACT §5.3)."""

NEWS_SHIFT = MoodShift(arousal=0.1)
"""Legacy meant news to move mood through an LLM call that never worked; news now stirs a little."""

INTERACTION_PROMPT_SHIFT = MoodShift(arousal=0.05)


def shift_for_event(event_type: str, data: Any) -> MoodShift | None:
    """The mood change an event causes, or None.

    ``mood_shift`` reads ``valenceShift``/``arousalShift``/``dominanceShift`` from its data (as
    legacy; missing or non-numeric parts count as 0). ``news`` and ``interaction_prompt`` stir
    arousal a little; custom types do not touch mood.
    """
    if event_type == "mood_shift":
        parts = data if isinstance(data, Mapping) else {}
        return MoodShift(
            _number(parts.get("valenceShift")),
            _number(parts.get("arousalShift")),
            _number(parts.get("dominanceShift")),
        )
    if event_type == "news":
        return NEWS_SHIFT
    if event_type == "interaction_prompt":
        return INTERACTION_PROMPT_SHIFT
    return None


def shift_for_interaction(sentiment: float) -> MoodShift:
    """The mood change from an interaction whose tone is ``sentiment`` in [-1, 1].

    Kind words lift valence and dominance a little, hostile ones lower them; any interaction
    raises arousal slightly.
    """
    s = _clamp(sentiment, -1.0, 1.0) if math.isfinite(sentiment) else 0.0
    return MoodShift(valence=0.1 * s, arousal=0.05, dominance=0.05 * s)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0
