"""Each persona's life: the posting schedule, mentions and reactions, events and their effects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from puppet.llm.v1 import llm_pb2
from puppet.memory.v1 import memory_pb2
from puppet.social.v1 import social_pb2
from puppet_runtime import ServiceError

from puppet_agent import convert
from puppet_agent.fleet import Fleet, derived
from puppet_agent.life.events import ALL, Event, EventEngine, Priority, for_each_persona
from puppet_agent.life.mood import shift_for_event, shift_for_interaction
from puppet_agent.life.reactions import (
    Action,
    InteractionPatterns,
    LoopGuard,
    Verdict,
    decide_reaction,
)
from puppet_agent.life.schedule import PostFrequency, next_post_time
from puppet_agent.settings import AgentSettings
from puppet_agent.store import EventRecord

log = logging.getLogger(__name__)

_ACTIONS = {
    llm_pb2.REACTION_ACTION_IGNORE: Action.IGNORE,
    llm_pb2.REACTION_ACTION_LIKE: Action.LIKE,
    llm_pb2.REACTION_ACTION_REPLY: Action.REPLY,
    llm_pb2.REACTION_ACTION_QUOTE: Action.QUOTE,
}


class Runner:
    """Runs the lives of the personas of this replica (the fleet's Life)."""

    def __init__(
        self,
        fleet: Fleet,
        settings: AgentSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fleet = fleet
        self._settings = settings
        self._clock = clock
        self._rng = random.Random(settings.random_seed)
        self._tz = ZoneInfo(settings.timezone)
        self._engine = EventEngine(clock=clock)
        self._engine.on(ALL, self._handle_event)
        self._per_persona = for_each_persona(self._running, self._on_event)
        self.guard = LoopGuard(is_persona=lambda who: who in self._known, clock=time.monotonic)
        self._known: set[str] = set()
        self._paused: set[str] = set()
        self._lives: dict[str, list[asyncio.Task[None]]] = {}
        self._next: dict[str, float] = {}
        self._started = False

    # Life

    def persona_changed(self, agent_id: str) -> None:
        if self._started:
            asyncio.get_running_loop().create_task(self._refresh(agent_id))

    def persona_removed(self, agent_id: str) -> None:
        self._known.discard(agent_id)
        self._paused.discard(agent_id)
        self._stop_life(agent_id)

    def event_created(self, event: EventRecord) -> None:
        delay = 0.0 if event.execute_after is None else event.execute_after - self._clock()
        self._engine.submit(
            event.type,
            event.data,
            targets=event.targets,
            priority=Priority.parse(event.priority),
            delay_s=max(delay, 0.0) if event.execute_after is not None else 0.0,
            event_id=event.id,
        )

    def next_post_time(self, agent_id: str) -> float | None:
        return self._next.get(agent_id)

    def lease(self, agent_id: str) -> tuple[str, float | None]:
        return ("local", None) if agent_id in self._lives else ("", None)

    # lifecycle

    async def start(self) -> None:
        self._started = True
        for record in await self._fleet.store.list_personas(limit=100_000):
            self._known.add(record.id)
            if record.paused:
                self._paused.add(record.id)
            elif self._settings.run_lives:
                self._start_life(record.id)
        for event in await self._fleet.store.pending_events():
            self.event_created(event)
        await self._engine.start()

    async def stop(self) -> None:
        self._started = False
        for agent_id in list(self._lives):
            self._stop_life(agent_id)
        await self._engine.stop()

    async def idle(self) -> None:
        """Wait until no due event is queued or being handled (for tests and shutdown)."""
        await self._engine.idle()

    async def _refresh(self, agent_id: str) -> None:
        record = await self._fleet.store.get_persona(agent_id)
        if record is None:
            return self.persona_removed(agent_id)
        self._known.add(agent_id)
        self._stop_life(agent_id)
        if record.paused:
            self._paused.add(agent_id)
            self._next.pop(agent_id, None)
        else:
            self._paused.discard(agent_id)
            if self._settings.run_lives:
                self._start_life(agent_id)
        return None

    def _running(self) -> list[str]:
        return sorted(self._known - self._paused)

    def _start_life(self, agent_id: str) -> None:
        self._lives[agent_id] = [
            asyncio.get_running_loop().create_task(
                self._schedule(agent_id), name=f"post-{agent_id}"
            ),
            asyncio.get_running_loop().create_task(
                self._mentions(agent_id), name=f"mentions-{agent_id}"
            ),
        ]

    def _stop_life(self, agent_id: str) -> None:
        for task in self._lives.pop(agent_id, []):
            task.cancel()
        self._next.pop(agent_id, None)

    # posting schedule

    async def _schedule(self, agent_id: str) -> None:
        earliest = self._clock() + self._settings.first_post_delay_s
        while True:
            try:
                at = await self._plan(agent_id, earliest)
                self._next[agent_id] = at
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
        at = next_post_time(
            PostFrequency(
                min_hours=freq.min_hours_between_posts,
                max_hours=freq.max_hours_between_posts,
                peak_hours=frozenset(freq.peak_posting_hours),
            ),
            now=self._clock(),
            rng=self._rng,
            last_post=last,
            tz=self._tz,
        )
        return max(at, earliest)

    # mentions

    async def _mentions(self, agent_id: str) -> None:
        backoff = 1.0
        while True:
            try:
                state = await self._fleet.state(agent_id)
                cursor = state.last_mention_id if state is not None else ""
                async for mention in self._fleet.clients.social.mentions(agent_id, cursor):
                    backoff = 1.0
                    if agent_id not in self._paused:
                        await self._on_mention(agent_id, mention)
                    await self._fleet.clients.memory.set_last_mention(agent_id, mention.post.id)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "mentions of %s interrupted (%s); retrying in %.0fs", agent_id, err, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _on_mention(self, agent_id: str, mention: social_pb2.Mention) -> None:
        post = mention.post
        if post.author_account == f"accounts/{agent_id}":
            return
        who = (post.author_account.rsplit("/", 1)[-1] or post.author_handle).lower() or "unknown"
        await self._fleet.clients.memory.create_memory(
            agent_id,
            memory_pb2.Memory(
                kind=memory_pb2.MEMORY_KIND_INTERACTION,
                content=f"@{post.author_handle} said: {post.text}"[:8_000],
                importance=0.5,
                associations=[who],
                provenance=memory_pb2.Provenance(
                    source=who[:64], channel=memory_pb2.PROVENANCE_CHANNEL_MENTION, trust=0.3
                ),
            ),
            request_id=derived("mention-memory", mention.name),
        )
        await self.react(agent_id, post, who, depth=mention.depth, mention=True, key=mention.name)

    async def react(
        self,
        agent_id: str,
        post: social_pb2.Post,
        who: str,
        *,
        depth: int,
        mention: bool,
        key: str,
    ) -> Action:
        """Decide and act on a post: reply, quote or like through social; relationship, mood."""
        _, persona = await self._fleet.persona(agent_id)
        patterns = persona.behavior.interaction_patterns
        if mention:  # mentions are always answered unless a loop breaker applies (the proto)
            action = Action.REPLY
        else:
            decision = await decide_reaction(
                InteractionPatterns(
                    patterns.reply_probability,
                    patterns.quote_tweet_probability,
                    patterns.like_probability,
                ),
                mention=False,
                rng=self._rng,
                llm=lambda: self._llm_decide(agent_id, persona, post, key),
            )
            action = decision.action
        if action in (Action.REPLY, Action.QUOTE):
            verdict = self.guard.admit(agent_id, who, thread_depth=depth)
            if verdict is not Verdict.OK:
                log.info("%s does not answer %s: %s", agent_id, who, verdict)
                action = Action.IGNORE
            else:
                await self._fleet.create_reply(
                    agent_id,
                    post.id,
                    fallback_text=post.text,
                    request_id=derived(str(action), key),
                    trigger="mention" if mention else "event",
                    quote=action is Action.QUOTE,
                )
        elif action is Action.LIKE:
            await self._fleet.clients.social.like(agent_id, post.name, derived("like", key))
        if action is not Action.IGNORE:
            await self._fleet.clients.memory.record_interaction(
                agent_id,
                who,
                sentiment=0.02,
                familiarity=0.05,
                note=f"{action} on: {post.text[:200]}",
                request_id=derived("rel", key),
            )
            shift = shift_for_interaction(0.2)
            await self._fleet.clients.memory.shift_mood(
                agent_id, shift.valence, shift.arousal, shift.dominance, derived("mood", key)
            )
        return action

    async def _llm_decide(
        self, agent_id: str, persona: Any, post: social_pb2.Post, key: str
    ) -> Action:
        llm_persona = convert.llm_persona(agent_id, persona, self._fleet.provider)
        llm_persona.ClearField("interaction_probabilities")  # the runner applies them
        state = await self._fleet.state(agent_id)
        context = await self._fleet.context(agent_id, state, post.text)
        decision = await self._fleet.clients.llm.decide_reaction(
            llm_persona,
            context,
            llm_pb2.TargetPost(
                post=post.name,
                text=post.text[:4_000],
                author_handle=post.author_handle,
                author_user_id=post.author_user_id,
            ),
            None,
            derived("decide", key),
        )
        return _ACTIONS.get(decision.action, Action.IGNORE)

    # events

    async def _handle_event(self, event: Event) -> None:
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
            await self.react(agent_id, post, target.lower(), depth=0, mention=False, key=key)
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
