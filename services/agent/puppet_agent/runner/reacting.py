"""Mentions and reactions: answer what mentions a persona, react to posts, through social."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from puppet.llm.v1 import llm_pb2
from puppet.memory.v1 import memory_pb2
from puppet.social.v1 import social_pb2
from puppet_runtime import ServiceError

from puppet_agent import convert
from puppet_agent.fleet import derived
from puppet_agent.life.mood import shift_for_interaction
from puppet_agent.life.reactions import (
    Action,
    InteractionPatterns,
    LoopGuard,
    Verdict,
    decide_reaction,
)
from puppet_agent.runner.kit import Kit, Piece

log = logging.getLogger(__name__)

_ACTIONS = {
    llm_pb2.REACTION_ACTION_IGNORE: Action.IGNORE,
    llm_pb2.REACTION_ACTION_LIKE: Action.LIKE,
    llm_pb2.REACTION_ACTION_REPLY: Action.REPLY,
    llm_pb2.REACTION_ACTION_QUOTE: Action.QUOTE,
}


class Reactions(Piece):
    """A persona's mention stream and its reactions (reply, quote, like) to posts."""

    def __init__(self, kit: Kit, *, guard: LoopGuard, is_paused: Callable[[str], bool]) -> None:
        super().__init__(kit)
        self._guard = guard
        self._is_paused = is_paused

    async def mentions(self, agent_id: str) -> None:
        backoff = 1.0
        while True:
            try:
                state = await self._fleet.state(agent_id)
                cursor = state.last_mention_id if state is not None else ""
                async for mention in self._fleet.clients.social.mentions(agent_id, cursor):
                    backoff = 1.0
                    if not self._is_paused(agent_id):
                        await self._answer_once(agent_id, mention)
                    await self._fleet.clients.memory.set_last_mention(agent_id, mention.post.id)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "mentions of %s interrupted (%s); retrying in %.0fs", agent_id, err, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _answer_once(self, agent_id: str, mention: social_pb2.Mention) -> None:
        """Handle a mention; one that fails for good (e.g. the llm refuses) is skipped, so it
        cannot hold back every later mention. A dependency outage is raised (retried)."""
        try:
            await self._on_mention(agent_id, mention)
        except ServiceError as err:
            if err.reason.endswith("_UNAVAILABLE"):
                raise
            log.warning("mention %s of %s skipped: %s", mention.post.id, agent_id, err.message)

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
        prompted: bool = False,
    ) -> Action:
        """Decide and act on a post: reply, quote or like through social; relationship, mood.

        A mention, or a post an interaction_prompt event pointed the persona at (`prompted`), is
        answered unless a loop breaker applies; any other post goes through the reaction draw.
        """
        _, persona = await self._fleet.persona(agent_id)
        patterns = persona.behavior.interaction_patterns
        if mention or prompted:
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
            verdict = self._guard.admit(agent_id, who, thread_depth=depth)
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
