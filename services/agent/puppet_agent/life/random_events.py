"""Legacy's random events (CONTRACT §5.3): the news, mood-shift and interaction-prompt payloads.

The runner draws them per running persona on the three legacy timers. Payloads keep the legacy
shapes; the templates are 5 x 8 for news and 5 x 6 for prompts, as legacy's were.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from puppet_agent.life.mood import MOOD_PRESETS

NEWS_TEMPLATES = (
    "Breaking: Major {topic} breakthrough announced today.",
    "New study reveals surprising facts about {topic}.",
    "Experts debate the future of {topic}.",
    "{topic} is trending everywhere this week.",
    "Controversy erupts over latest {topic} developments.",
)
NEWS_TOPICS = ("technology", "science", "art", "music", "climate", "space", "food", "sports")
PROMPT_TEMPLATES = (
    "Start a conversation about {topic}",
    "Ask a question about {topic}",
    "Share a hot take on {topic}",
    "Respond to their latest thoughts on {topic}",
    "Tease them about {topic}",
)
PROMPT_TOPICS = ("the weather", "breakfast", "the internet", "music", "weekend plans", "art")


def mood_data(rng: random.Random) -> dict[str, Any]:
    """``{name, description, valenceShift, arousalShift, dominanceShift}`` from a legacy preset."""
    name = rng.choice(sorted(MOOD_PRESETS))
    shift = MOOD_PRESETS[name]
    return {
        "name": name,
        "description": f"Experiencing {name}",
        "valenceShift": shift.valence,
        "arousalShift": shift.arousal,
        "dominanceShift": shift.dominance,
    }


def news_data(rng: random.Random) -> dict[str, Any]:
    """``{headline, topic, description, url}`` for a ``news`` event."""
    topic = rng.choice(NEWS_TOPICS)
    headline = rng.choice(NEWS_TEMPLATES).format(topic=topic)
    return {"headline": headline, "topic": topic, "description": headline, "url": None}


def interaction_data(
    rng: random.Random, initiator: str, others: Sequence[str]
) -> dict[str, Any] | None:
    """``{description, initiatorId, targetId, topic}`` with a random target; None when alone."""
    if not others:
        return None
    topic = rng.choice(PROMPT_TOPICS)
    return {
        "description": rng.choice(PROMPT_TEMPLATES).format(topic=topic),
        "initiatorId": initiator,
        "targetId": rng.choice(sorted(others)),
        "topic": topic,
    }
