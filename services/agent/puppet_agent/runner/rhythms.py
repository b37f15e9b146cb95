"""A persona's timers: the posting schedule, legacy's random events and mood decay."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

from puppet_runtime import ServiceError

from puppet_agent import convert
from puppet_agent.life import random_events
from puppet_agent.life.mood import Mood
from puppet_agent.life.schedule import PostFrequency, next_post_time
from puppet_agent.runner.kit import Kit, Piece

log = logging.getLogger(__name__)


class Rhythms(Piece):
    """The loops that run on a clock for each running persona; next_post is each one's plan."""

    def __init__(self, kit: Kit) -> None:
        super().__init__(kit)
        self._tz = ZoneInfo(kit.settings.timezone)
        self.next_post: dict[str, float] = {}

    # posting schedule

    async def schedule(self, agent_id: str) -> None:
        earliest = self._clock() + self._settings.first_post_delay_s
        while True:
            try:
                at = await self._plan(agent_id, earliest)
                self.next_post[agent_id] = at
                await self._sleep_until(at)
                await self._fleet.create_post(
                    agent_id, request_id=f"slot-{agent_id}-{int(at)}", trigger="schedule"
                )
            except asyncio.CancelledError:
                raise
            except ServiceError as err:
                if err.reason != "POST_TOO_SOON":
                    log.warning("scheduled post of %s failed: %s", agent_id, err.message)
                    await asyncio.sleep(self._settings.tick_s)
            except Exception:
                log.exception("scheduled post of %s failed", agent_id)
                await asyncio.sleep(self._settings.tick_s)

    async def _sleep_until(self, at: float) -> None:
        """Sleep in ticks, so a moved wall clock (or an injected one) is noticed."""
        for _ in range(1_000_000):
            wait = at - self._clock()
            if wait <= 0:
                return
            await asyncio.sleep(min(wait, self._settings.tick_s))

    async def _plan(self, agent_id: str, earliest: float) -> float:
        _, persona = await self._fleet.persona(agent_id)
        state = await self._fleet.state(agent_id)
        freq = persona.behavior.post_frequency
        last = convert.seconds(state.last_post_time) if state is not None else None
        scale, floor_h = self._settings.schedule_scale, self._settings.min_post_gap_s / 3600
        low = max(freq.min_hours_between_posts * scale, floor_h if last is not None else 0.0)
        at = next_post_time(
            PostFrequency(
                min_hours=low,
                max_hours=max(freq.max_hours_between_posts * scale, low),
                peak_hours=frozenset(freq.peak_posting_hours),
                jitter_minutes=PostFrequency.jitter_minutes * scale,
            ),
            now=self._clock(),
            rng=self._rng,
            last_post=last,
            tz=self._tz,
        )
        return max(at, earliest)

    # random events (legacy setupRandomEvents, per persona)

    async def ambient(self, agent_id: str) -> None:
        kinds = {
            "mood_shift": self._settings.mood_event_interval_s,
            "news": self._settings.news_event_interval_s,
            "interaction_prompt": self._settings.interaction_event_interval_s,
        }
        due = {kind: self._clock() + every for kind, every in kinds.items() if every > 0}
        while due:
            kind = min(due, key=due.__getitem__)
            await self._sleep_until(due[kind])
            due[kind] += kinds[kind]
            data = self._ambient_data(kind, agent_id)
            if data is None:
                continue
            try:
                await self._fleet.create_event(kind, data, [agent_id], "normal", 0)
            except Exception as err:
                log.warning("random %s event for %s not created: %s", kind, agent_id, err)

    def _ambient_data(self, kind: str, agent_id: str) -> dict[str, Any] | None:
        if kind == "mood_shift":
            return random_events.mood_data(self._rng)
        if kind == "news":
            return random_events.news_data(self._rng)
        others = [p for p in self._running() if p != agent_id]
        return random_events.interaction_data(self._rng, agent_id, others)

    # mood

    async def moods(self, agent_id: str) -> None:
        """Decay the mood toward the persona's baseline, one interval at a time."""
        interval = self._settings.mood_decay_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self._decay(agent_id, interval)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("mood decay of %s skipped: %s", agent_id, err)

    async def _decay(self, agent_id: str, elapsed_s: float) -> None:
        state = await self._fleet.state(agent_id)
        if state is None:
            return
        now = Mood(state.mood.valence, state.mood.arousal, state.mood.dominance)
        base = state.baseline_mood
        target = now.decayed(
            Mood(base.valence, base.arousal, base.dominance),
            elapsed_s,
            self._settings.mood_half_life_s,
        )
        deltas = (
            target.valence - now.valence,
            target.arousal - now.arousal,
            target.dominance - now.dominance,
        )
        if max(abs(d) for d in deltas) > 1e-4:
            await self._fleet.clients.memory.shift_mood(agent_id, *deltas)
