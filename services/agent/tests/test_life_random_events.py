"""Random events: legacy payload shapes; an interaction prompt targets another persona."""

from __future__ import annotations

import random

from puppet_agent.life.mood import MOOD_PRESETS, shift_for_event
from puppet_agent.life.random_events import interaction_data, mood_data, news_data


def test_payloads_keep_the_legacy_shapes():
    rng = random.Random(4)
    news = news_data(rng)
    assert set(news) == {"headline", "topic", "description", "url"}
    assert news["description"] == news["headline"]
    assert news["topic"] in news["headline"]
    mood = mood_data(rng)
    assert mood["description"] == f"Experiencing {mood['name']}"
    assert shift_for_event("mood_shift", mood) == MOOD_PRESETS[mood["name"]]


def test_interaction_prompts_target_another_persona():
    rng = random.Random(2)
    assert interaction_data(rng, "solo", []) is None
    for _ in range(200):
        data = interaction_data(rng, "a", ["b", "c"])
        assert data is not None
        assert set(data) == {"description", "initiatorId", "targetId", "topic"}
        assert data["initiatorId"] == "a"
        assert data["targetId"] in {"b", "c"}
        assert data["topic"] in data["description"]
