"""Legacy's random events (CONTRACT §5.3): news, mood shifts and interaction prompts on timers.

Payloads keep the legacy shapes. Fixed on purpose: the persona list is read at every firing, so
personas created later through the API get random events too (legacy fixed the list at boot),
and the first firing can come early (``first_after_s``) instead of one full interval after boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from puppet_agent.life.events import EventEngine
from puppet_agent.life.mood import MOOD_PRESETS

log = logging.getLogger(__name__)

NEWS_TEMPLATES = (
    "Breaking: Major {topic} breakthrough announced today.",
    "New study reveals surprising trends in {topic}.",
    "Experts debate the future of {topic} after this week's events.",
    "Controversy erupts over the latest {topic} developments.",
    "Quiet shift in {topic} catches industry watchers off guard.",
)
NEWS_TOPICS = ("technology", "AI", "crypto", "climate", "space", "culture", "economy", "science")
PROMPT_TEMPLATES = (
    "Start a conversation about {topic}.",
    "Share a hot take about {topic}.",
    "Ask a question about {topic}.",
    "Respond to a recent post about {topic}.",
    "Tell a short story involving {topic}.",
)
PROMPT_TOPICS = ("the weekend", "a recent meme", "productivity", "the internet", "music", "food")


def news_data(rng: random.Random) -> dict[str, Any]:
    """``{headline, topic, description, url}`` for a broadcast ``news`` event."""
    topic = rng.choice(NEWS_TOPICS)
    headline = rng.choice(NEWS_TEMPLATES).format(topic=topic)
    return {"headline": headline, "topic": topic, "description": headline, "url": None}


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


def interaction_prompts(
    persona_ids: Sequence[str], rng: random.Random
) -> list[tuple[str, dict[str, Any]]]:
    """``(initiator, data)`` pairs: 1-3 random pairs (1 below 4 personas), 30% also reversed."""
    if len(persona_ids) < 2:
        return []
    prompts: list[tuple[str, dict[str, Any]]] = []
    for _ in range(1 if len(persona_ids) < 4 else rng.randint(1, 3)):
        initiator, target = rng.sample(list(persona_ids), 2)
        topic = rng.choice(PROMPT_TOPICS)
        pairs = [(initiator, target)] + ([(target, initiator)] if rng.random() < 0.3 else [])
        for a, b in pairs:
            text = rng.choice(PROMPT_TEMPLATES).format(topic=topic)
            prompts.append(
                (a, {"description": text, "initiatorId": a, "targetId": b, "topic": topic})
            )
    return prompts


@dataclass(frozen=True)
class RandomEventIntervals:
    """Seconds between firings (legacy defaults: news 6 h, mood 4 h, interaction 8 h)."""

    news_s: float = 6 * 3600.0
    mood_s: float = 4 * 3600.0
    interaction_s: float = 8 * 3600.0
    mood_spread_s: float = 3600.0
    """Each persona's mood event is delayed by up to this much (legacy's 0-60 min offset)."""
    first_after_s: float | None = None
    """When set, every timer first fires after this long instead of a whole interval."""


class RandomEvents:
    """Submits random events to an engine on three timers until stopped."""

    def __init__(
        self,
        engine: EventEngine,
        personas: Callable[[], Sequence[str]],
        intervals: RandomEventIntervals = RandomEventIntervals(),
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._personas = personas
        self._intervals = intervals
        self._rng = rng or random.Random()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._tasks:
            return
        i = self._intervals
        for name, every, fire in (
            ("news", i.news_s, self.fire_news),
            ("mood", i.mood_s, self.fire_moods),
            ("interaction", i.interaction_s, self.fire_interactions),
        ):
            self._tasks.append(asyncio.create_task(self._every(every, fire), name=f"random-{name}"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def fire_news(self) -> None:
        self._engine.submit("news", news_data(self._rng))

    def fire_moods(self) -> None:
        for persona_id in self._personas():
            delay = self._rng.uniform(0, self._intervals.mood_spread_s)
            self._engine.submit(
                "mood_shift", mood_data(self._rng), targets=[persona_id], delay_s=delay
            )

    def fire_interactions(self) -> None:
        for initiator, data in interaction_prompts(self._personas(), self._rng):
            self._engine.submit("interaction_prompt", data, targets=[initiator])

    async def _every(self, every_s: float, fire: Callable[[], None]) -> None:
        first = self._intervals.first_after_s
        await asyncio.sleep(every_s if first is None else first)
        while True:
            try:
                fire()
            except Exception:
                log.exception("random event %s failed", getattr(fire, "__name__", fire))
            await asyncio.sleep(every_s)
