"""What an event does to each persona it reaches: mood, an event memory, a post or a reply."""

from __future__ import annotations

import contextlib
from typing import Any

from puppet.memory.v1 import memory_pb2
from puppet_runtime import ServiceError

from puppet_agent.fleet import derived
from puppet_agent.life.events import Event, for_each_persona
from puppet_agent.life.mood import shift_for_event
from puppet_agent.runner.kit import Kit, Piece
from puppet_agent.runner.reacting import Reactions


class EventEffects(Piece):
    """Handles the event engine's events for every running persona they target."""

    def __init__(self, kit: Kit, reactions: Reactions) -> None:
        super().__init__(kit)
        self._reactions = reactions
        self._per_persona = for_each_persona(kit.running, self._on_event)

    async def handle(self, event: Event) -> None:
        try:
            await self._per_persona(event)
        finally:
            await self._fleet.store.mark_processed(event.id, self._clock())

    async def _on_event(self, agent_id: str, event: Event) -> None:
        key = f"{event.id}/{agent_id}"
        memory = self._fleet.clients.memory
        data = event.data if isinstance(event.data, dict) else {"value": event.data}
        shift = shift_for_event(event.type, data)
        if shift is not None:
            await memory.shift_mood(
                agent_id, shift.valence, shift.arousal, shift.dominance, derived("event-mood", key)
            )
        text = _event_text(event.type, data)
        if event.type != "interaction_prompt":
            await memory.create_memory(
                agent_id,
                memory_pb2.Memory(
                    kind=memory_pb2.MEMORY_KIND_EVENT,
                    content=text[:8_000],
                    importance=0.7 if event.type == "news" else 0.6,
                    metadata={"event_type": event.type[:1_024], "event_id": event.id},
                    provenance=memory_pb2.Provenance(
                        source="operator", channel=memory_pb2.PROVENANCE_CHANNEL_EVENT
                    ),
                ),
                request_id=derived("event-memory", key),
            )
        if not self._settings.run_lives:
            return
        if event.type == "interaction_prompt":
            await self._interaction_prompt(agent_id, data, key)
            return
        post = (
            event.type == "mood_shift"
            and (_number(data.get("arousalShift")) > 0.3 or self._rng.random() < 0.2)
        ) or (event.type == "news" and self._rng.random() < 0.3)
        if post:
            topic = str(data.get("headline") or data.get("topic") or "")[:280]
            with contextlib.suppress(ServiceError):
                await self._fleet.create_post(
                    agent_id, topic=topic, request_id=derived("event-post", key), trigger="event"
                )

    async def _interaction_prompt(self, agent_id: str, data: dict[str, Any], key: str) -> None:
        initiator = str(data.get("initiatorId") or agent_id)
        target = str(data.get("targetId") or "")
        if initiator != agent_id or not target or target == agent_id:
            return
        posts = await self._fleet.clients.social.recent_posts(target, limit=5)
        if posts:
            post = self._rng.choice(posts)
            await self._reactions.react(
                agent_id, post, target.lower(), depth=0, mention=False, key=key, prompted=True
            )
            return
        topic = str(data.get("topic") or "")[:280]
        with contextlib.suppress(ServiceError):
            await self._fleet.create_post(
                agent_id, topic=topic, request_id=derived("prompt-post", key), trigger="event"
            )


def _event_text(kind: str, data: dict[str, Any]) -> str:
    if kind == "news":
        return f"News: {data.get('headline') or data.get('description') or data}"
    if kind == "mood_shift":
        return str(data.get("description") or f"Experiencing {data.get('name', 'a mood shift')}")
    return f"Event {kind}: {data}"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
