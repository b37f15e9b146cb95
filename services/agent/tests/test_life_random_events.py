"""Random events: legacy payload shapes, pairing rules, timers that see personas added later."""

from __future__ import annotations

import asyncio
import random

from puppet_agent.life.events import ALL, Event, EventEngine
from puppet_agent.life.mood import MOOD_PRESETS, shift_for_event
from puppet_agent.life.random_events import (
    RandomEventIntervals,
    RandomEvents,
    interaction_prompts,
    mood_data,
    news_data,
)


def test_payloads_keep_the_legacy_shapes():
    rng = random.Random(4)
    news = news_data(rng)
    assert set(news) == {"headline", "topic", "description", "url"}
    assert news["description"] == news["headline"]
    assert news["topic"] in news["headline"]
    mood = mood_data(rng)
    assert mood["description"] == f"Experiencing {mood['name']}"
    assert shift_for_event("mood_shift", mood) == MOOD_PRESETS[mood["name"]]


def test_interaction_prompts_pair_distinct_personas():
    rng = random.Random(2)
    assert interaction_prompts(["solo"], rng) == []
    for _ in range(200):
        few = interaction_prompts(["a", "b", "c"], rng)
        assert 1 <= len(few) <= 2
        many = interaction_prompts(["a", "b", "c", "d", "e"], rng)
        assert 1 <= len(many) <= 6
        for initiator, data in few + many:
            assert initiator == data["initiatorId"] != data["targetId"]


async def test_timers_fire_into_the_engine_and_see_personas_added_later():
    personas = ["a"]
    engine = EventEngine()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    engine.on(ALL, record)
    intervals = RandomEventIntervals(
        news_s=0.05, mood_s=0.05, interaction_s=0.05, mood_spread_s=0.0
    )
    source = RandomEvents(engine, lambda: personas, intervals, rng=random.Random(1))
    async with engine:
        await source.start()
        await asyncio.sleep(0.08)
        personas.append("b")
        await asyncio.sleep(0.15)
        await source.stop()
        await engine.idle()
    types = {e.type for e in seen}
    assert types == {"news", "mood_shift", "interaction_prompt"}
    assert {t for e in seen if e.type == "mood_shift" for t in e.targets} == {"a", "b"}
    assert all(e.targets == () for e in seen if e.type == "news")
