"""Reactions to a post: what a persona does (reply/quote/like/ignore) and the loop breaker.

The decision combines the persona's temperament (``InteractionPatterns``, CONTRACT §5.5) with an
injected LLM judgement. Legacy bugs fixed on purpose: the LLM's answer is no longer overwritten
70% of the time (§11 #7), a quote keeps its configured probability (legacy halved it), and a
failing LLM falls back to the probabilities instead of crashing the process (§11 #5).

``LoopGuard`` bounds conversations, which legacy did not: a thread-depth cap, a reply budget per
counterparty per window followed by a cool-down, and a pair budget between two personas (replies
in both directions count), so two personas cannot talk forever.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K")


class Action(StrEnum):
    """What a persona does with a post."""

    REPLY = "reply"
    QUOTE = "quote"
    LIKE = "like"
    IGNORE = "ignore"


@dataclass(frozen=True)
class InteractionPatterns:
    """Legacy ``behavior.interaction_patterns`` (defaults as legacy: 0.5 / 0.3 / 0.7)."""

    reply_probability: float = 0.5
    quote_probability: float = 0.3
    like_probability: float = 0.7

    def __post_init__(self) -> None:
        for name in ("reply_probability", "quote_probability", "like_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")

    def probability(self, action: Action) -> float:
        return {
            Action.REPLY: self.reply_probability,
            Action.QUOTE: self.quote_probability,
            Action.LIKE: self.like_probability,
            Action.IGNORE: 1.0,
        }[action]


LlmDecide = Callable[[], Awaitable[Action]]
"""Asks the LLM which action fits this post (the caller closes over the post's text)."""


@dataclass(frozen=True)
class Decision:
    """The chosen action, what was proposed before the persona's probabilities, and by whom."""

    action: Action
    proposed: Action
    source: str
    """"llm", "mention" (default for a direct mention) or "draw" (no LLM answer)."""


async def decide_reaction(
    patterns: InteractionPatterns,
    *,
    mention: bool,
    rng: random.Random,
    llm: LlmDecide | None = None,
) -> Decision:
    """Decide how a persona reacts to a post.

    1. A proposal: the LLM's answer when ``llm`` is given and answers; otherwise REPLY for a
       direct mention (legacy always answered mentions) and a draw from the probabilities for
       any other post.
    2. The persona's temperament gates it: the proposal is kept with its configured probability;
       a dropped reply or quote becomes a like with ``like_probability``, else IGNORE.

    With the shipped personas (reply_probability 1.0) a mention is answered unless the LLM
    judges it not worth answering.
    """
    proposed, source = await _propose(llm)
    if proposed is None:
        proposed, source = (Action.REPLY, "mention") if mention else (_draw(patterns, rng), "draw")
        if source == "draw":
            return Decision(proposed, proposed, source)
    if rng.random() < patterns.probability(proposed) or proposed is Action.IGNORE:
        return Decision(proposed, proposed, source)
    if proposed is not Action.LIKE and rng.random() < patterns.like_probability:
        return Decision(Action.LIKE, proposed, source)
    return Decision(Action.IGNORE, proposed, source)


async def _propose(llm: LlmDecide | None) -> tuple[Action | None, str]:
    if llm is None:
        return None, "draw"
    try:
        return Action(await llm()), "llm"
    except Exception:
        log.warning(
            "reaction LLM failed; falling back to the persona's probabilities", exc_info=True
        )
        return None, "draw"


def _draw(patterns: InteractionPatterns, rng: random.Random) -> Action:
    """Reply, quote, like, each tried in turn with its probability; IGNORE if none is drawn."""
    for action in (Action.REPLY, Action.QUOTE, Action.LIKE):
        if rng.random() < patterns.probability(action):
            return action
    return Action.IGNORE


@dataclass(frozen=True)
class LoopLimits:
    """Bounds on conversations.

    Attributes:
        max_thread_depth: No reply to a post this deep in its thread or deeper (root = 0).
        counterparty_replies: Replies one persona may send one counterparty per window.
        counterparty_window_s: The window for ``counterparty_replies``.
        cooldown_s: After the budget is spent, silence toward that counterparty this long.
        pair_replies: Replies two personas may exchange (both directions) per pair window,
            fleet-wide within the guard.
        pair_window_s: The window for ``pair_replies``.
    """

    max_thread_depth: int = 8
    counterparty_replies: int = 5
    counterparty_window_s: float = 3600.0
    cooldown_s: float = 3600.0
    pair_replies: int = 6
    pair_window_s: float = 3600.0


class Verdict(StrEnum):
    """Why a reply is allowed or refused."""

    OK = "ok"
    THREAD_TOO_DEEP = "thread_too_deep"
    COOLING_DOWN = "cooling_down"
    COUNTERPARTY_BUDGET = "counterparty_budget"
    PAIR_BUDGET = "pair_budget"


class LoopGuard:
    """Decides whether a persona may reply to a counterparty, and records the replies it sends.

    One guard serves every persona of a replica, so the pair budget sees both directions of a
    conversation between personas that live there. Across replicas the thread-depth cap still
    bounds every conversation, because depth comes from the social network, not from the guard.
    Memory is bounded: timestamps older than their window are pruned on use.
    """

    def __init__(
        self,
        limits: LoopLimits = LoopLimits(),
        *,
        is_persona: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._is_persona = is_persona
        self._clock = clock
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._cooldown_until: dict[tuple[str, str], float] = {}
        self._pairs: dict[frozenset[str], deque[float]] = {}

    def check(self, persona_id: str, counterparty_id: str, *, thread_depth: int) -> Verdict:
        """Whether ``persona_id`` may reply to ``counterparty_id`` at ``thread_depth``."""
        lim, now, key = self._limits, self._clock(), (persona_id, counterparty_id)
        if thread_depth >= lim.max_thread_depth:
            return Verdict.THREAD_TOO_DEEP
        until = self._cooldown_until.get(key)
        if until is not None and now < until:
            return Verdict.COOLING_DOWN
        self._cooldown_until.pop(key, None)
        if (
            len(_recent(self._sent, key, now - lim.counterparty_window_s))
            >= lim.counterparty_replies
        ):
            self._cooldown_until[key] = now + lim.cooldown_s
            return Verdict.COUNTERPARTY_BUDGET
        pair = self._pair(persona_id, counterparty_id)
        if pair and len(_recent(self._pairs, pair, now - lim.pair_window_s)) >= lim.pair_replies:
            return Verdict.PAIR_BUDGET
        return Verdict.OK

    def record(self, persona_id: str, counterparty_id: str) -> None:
        """Count a reply ``persona_id`` sent to ``counterparty_id``."""
        now = self._clock()
        self._sent.setdefault((persona_id, counterparty_id), deque()).append(now)
        pair = self._pair(persona_id, counterparty_id)
        if pair:
            self._pairs.setdefault(pair, deque()).append(now)

    def admit(self, persona_id: str, counterparty_id: str, *, thread_depth: int) -> Verdict:
        """``check``, and ``record`` when it is OK: call this right before sending a reply."""
        verdict = self.check(persona_id, counterparty_id, thread_depth=thread_depth)
        if verdict is Verdict.OK:
            self.record(persona_id, counterparty_id)
        return verdict

    def _pair(self, a: str, b: str) -> frozenset[str] | None:
        return frozenset((a, b)) if self._is_persona(b) and self._is_persona(a) else None


def _recent(table: dict[K, deque[float]], key: K, since: float) -> deque[float]:
    """The timestamps under ``key`` after ``since`` (older ones are dropped, empty keys too)."""
    stamps = table.get(key)
    if stamps is None:
        return deque()
    while stamps and stamps[0] <= since:
        stamps.popleft()
    if not stamps:
        del table[key]
    return stamps
