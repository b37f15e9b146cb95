"""Mood: clamps, shifts from events and interactions, decay toward the baseline, labels."""

from __future__ import annotations

import pytest
from puppet_agent.life.mood import (
    MOOD_PRESETS,
    Mood,
    MoodShift,
    PersonaMood,
    shift_for_event,
    shift_for_interaction,
)


def test_mood_is_clamped_like_legacy():
    assert Mood(-3, 2, -1) == Mood(-1, 1, 0)
    assert Mood().shifted(MoodShift(0.5, 0.5, 0.9)).shifted(MoodShift(0.9, 0.9, 0.9)) == Mood(
        1, 1, 1
    )
    with pytest.raises(ValueError, match="finite"):
        Mood(float("nan"))


def test_mood_shift_events_read_legacy_keys_and_tolerate_junk():
    shift = shift_for_event(
        "mood_shift", {"valenceShift": 0.3, "arousalShift": 0.4, "dominanceShift": "x"}
    )
    assert shift == MoodShift(0.3, 0.4, 0.0)
    assert shift_for_event("mood_shift", "not a mapping") == MoodShift()
    assert shift_for_event("news", {})
    assert shift_for_event("custom-thing", {"valenceShift": 1}) is None


def test_interactions_move_valence_with_their_tone():
    assert shift_for_interaction(1.0).valence > 0 > shift_for_interaction(-1.0).valence
    assert shift_for_interaction(float("inf")) == shift_for_interaction(0.0)


def test_decay_halves_the_distance_to_baseline_each_half_life():
    baseline = Mood(0.2, 0.3, 0.5)
    state = PersonaMood(Mood(1.0, 1.0, 1.0), updated_at=0.0, baseline=baseline, half_life_s=100.0)
    half = state.at(100.0)
    assert half.valence == pytest.approx(0.6)
    assert half.arousal == pytest.approx(0.65)
    assert state.at(10_000.0).valence == pytest.approx(0.2, abs=1e-9)
    assert state.at(0.0) == state.mood


def test_apply_decays_first_then_shifts():
    state = PersonaMood(Mood(0.8, 0.0, 0.5), updated_at=0.0, half_life_s=10.0)
    after = state.apply(MOOD_PRESETS["brief melancholy"], now=10.0)
    assert after.updated_at == 10.0
    assert after.mood.valence == pytest.approx(0.4 - 0.3)


def test_labels_and_description_follow_the_axes():
    assert Mood(0.9, 0.9, 0.9).labels() == ("elated", "fired up", "commanding")
    assert Mood(-0.9, 0.0, 0.0).labels() == ("gloomy", "drowsy", "unsure of yourself")
    assert Mood().describe() == "even-keeled, drowsy and composed"
