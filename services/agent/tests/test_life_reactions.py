"""Reaction decisions (probabilities + LLM) and the loop breaker between personas and humans."""

from __future__ import annotations

import random

import pytest
from puppet_agent.life.reactions import (
    Action,
    InteractionPatterns,
    LoopGuard,
    LoopLimits,
    Verdict,
    decide_reaction,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def llm_says(action: Action):
    async def decide() -> Action:
        return action

    return decide


async def llm_down() -> Action:
    raise ConnectionError("llm unavailable")


async def test_a_mention_is_answered_by_a_persona_that_always_replies():
    always = InteractionPatterns(
        reply_probability=1.0, quote_probability=0.05, like_probability=0.75
    )
    rng = random.Random(0)
    for _ in range(50):
        decision = await decide_reaction(always, mention=True, rng=rng)
        assert (decision.action, decision.source) == (Action.REPLY, "mention")
        decision = await decide_reaction(always, mention=True, rng=rng, llm=llm_down)
        assert decision.action is Action.REPLY


async def test_the_llm_proposes_and_the_persona_probabilities_gate():
    shy = InteractionPatterns(reply_probability=0.0, quote_probability=0.0, like_probability=1.0)
    decision = await decide_reaction(
        shy, mention=False, rng=random.Random(1), llm=llm_says(Action.REPLY)
    )
    assert (decision.action, decision.proposed, decision.source) == (
        Action.LIKE,
        Action.REPLY,
        "llm",
    )
    never = InteractionPatterns(0.0, 0.0, 0.0)
    decision = await decide_reaction(
        never, mention=True, rng=random.Random(1), llm=llm_says(Action.QUOTE)
    )
    assert decision.action is Action.IGNORE
    eager = InteractionPatterns(1.0, 1.0, 1.0)
    decision = await decide_reaction(
        eager, mention=True, rng=random.Random(1), llm=llm_says(Action.IGNORE)
    )
    assert decision.action is Action.IGNORE


async def test_probabilities_shape_the_mix_without_an_llm():
    patterns = InteractionPatterns(
        reply_probability=0.2, quote_probability=0.5, like_probability=0.5
    )
    rng = random.Random(9)
    counts = {a: 0 for a in Action}
    for _ in range(4000):
        counts[(await decide_reaction(patterns, mention=False, rng=rng)).action] += 1
    assert counts[Action.REPLY] / 4000 == pytest.approx(0.2, abs=0.03)
    assert counts[Action.QUOTE] / 4000 == pytest.approx(0.8 * 0.5, abs=0.03)
    assert counts[Action.LIKE] / 4000 == pytest.approx(0.8 * 0.5 * 0.5, abs=0.03)


def test_probabilities_outside_unit_interval_are_refused():
    with pytest.raises(ValueError, match="reply_probability"):
        InteractionPatterns(reply_probability=1.5)


def test_two_personas_ping_ponging_in_fresh_threads_stop_at_the_pair_budget():
    clock = ManualClock()
    limits = LoopLimits(counterparty_replies=100, pair_replies=6, pair_window_s=600)
    guard = LoopGuard(limits, is_persona={"a", "b"}.__contains__, clock=clock)
    sent = 0
    speaker, listener = "a", "b"
    for _ in range(100):
        if guard.admit(speaker, listener, thread_depth=1) is not Verdict.OK:
            break
        sent += 1
        speaker, listener = listener, speaker
        clock.now += 5
    assert sent == 6
    assert guard.check("a", "b", thread_depth=1) is Verdict.PAIR_BUDGET
    assert guard.check("a", "human", thread_depth=1) is Verdict.OK
    clock.now += 601
    assert guard.check("a", "b", thread_depth=1) is Verdict.OK


def test_a_ping_pong_in_one_thread_stops_at_the_depth_cap():
    guard = LoopGuard(LoopLimits(max_thread_depth=4, pair_replies=100), is_persona=lambda _: True)
    depth, speaker, listener = 0, "a", "b"
    while guard.admit(speaker, listener, thread_depth=depth) is Verdict.OK:
        depth += 1
        speaker, listener = listener, speaker
    assert depth == 4
    assert guard.check("a", "b", thread_depth=depth) is Verdict.THREAD_TOO_DEEP


def test_a_human_is_bounded_by_the_counterparty_budget_then_a_cooldown():
    clock = ManualClock()
    limits = LoopLimits(counterparty_replies=3, counterparty_window_s=100, cooldown_s=300)
    guard = LoopGuard(limits, is_persona={"a"}.__contains__, clock=clock)
    answered = 0
    for _ in range(20):
        if guard.admit("a", "human", thread_depth=1) is Verdict.OK:
            answered += 1
        clock.now += 1
    assert answered == 3
    assert guard.check("a", "human", thread_depth=1) is Verdict.COOLING_DOWN
    assert guard.check("a", "someone-else", thread_depth=1) is Verdict.OK
    clock.now += 100
    assert guard.check("a", "human", thread_depth=1) is Verdict.COOLING_DOWN
    clock.now += 300
    assert guard.admit("a", "human", thread_depth=1) is Verdict.OK
