"""The policy engine: every rule's denial, all reasons at once, approval thresholds, speed."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from puppet_chain.policy import WSOL, Proposal, Rule, Rules, Usage, Verdict, decide

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BOB = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"
OPEN = Rules(enabled=True, allowed_recipients=(BOB,))
SEND = Proposal(
    mints=(WSOL,), recipient=BOB, value_lamports=10**8, value_usd=15.0, sol_out_lamports=10**8
)
RICH = Usage(now=1_000_000.0, sol_balance=10**10)


def rules_of(decision_reasons: tuple[object, ...]) -> set[Rule]:
    return {r.rule for r in decision_reasons}  # type: ignore[attr-defined]


def test_open_policy_allows() -> None:
    decision = decide(OPEN, SEND, RICH)
    assert decision.verdict is Verdict.ALLOW
    assert decision.reasons == ()
    assert (decision.value_lamports, decision.value_usd) == (10**8, 15.0)


@pytest.mark.parametrize(
    ("rules", "proposal", "usage", "rule"),
    [
        (replace(OPEN, enabled=False), SEND, RICH, Rule.TRADING_DISABLED),
        (replace(OPEN, max_trade_lamports=10**7), SEND, RICH, Rule.TRADE_CAP),
        (replace(OPEN, max_trade_usd=10.0), SEND, RICH, Rule.TRADE_CAP),
        (
            replace(OPEN, max_daily_lamports=15 * 10**7),
            SEND,
            replace(RICH, spent_lamports=10**8),
            Rule.DAILY_CAP,
        ),
        (replace(OPEN, max_daily_usd=20.0), SEND, replace(RICH, spent_usd=6.0), Rule.DAILY_CAP),
        (replace(OPEN, max_daily_actions=3), SEND, replace(RICH, actions_today=3), Rule.DAILY_CAP),
        (replace(OPEN, min_reserve_lamports=10**10), SEND, RICH, Rule.MIN_RESERVE),
        (
            replace(OPEN, allowed_mints=(USDC,)),
            replace(SEND, mints=("Other1111111111111111111111111111111111111",)),
            RICH,
            Rule.MINT_NOT_ALLOWED,
        ),
        (
            replace(OPEN, denied_mints=(USDC,)),
            replace(SEND, mints=(USDC,)),
            RICH,
            Rule.MINT_NOT_ALLOWED,
        ),
        (replace(OPEN, allowed_recipients=()), SEND, RICH, Rule.RECIPIENT_NOT_ALLOWED),
        (OPEN, replace(SEND, recipient=None, slippage_bps=101), RICH, Rule.SLIPPAGE),
        (
            replace(OPEN, min_seconds_between_actions=60),
            SEND,
            replace(RICH, last_action_time=RICH.now - 10),
            Rule.COOLDOWN,
        ),
        (
            replace(OPEN, max_trade_usd=100.0),
            replace(SEND, value_usd=None),
            RICH,
            Rule.PRICE_UNAVAILABLE,
        ),
        (OPEN, SEND, replace(RICH, sol_balance=10**8), Rule.INSUFFICIENT_FUNDS),
        (OPEN, replace(SEND, token_out=5, sol_out_lamports=0), RICH, Rule.INSUFFICIENT_FUNDS),
    ],
)
def test_each_rule_denies_with_its_reason(
    rules: Rules, proposal: Proposal, usage: Usage, rule: Rule
) -> None:
    decision = decide(rules, proposal, usage)
    assert decision.verdict is Verdict.DENY
    assert rules_of(decision.reasons) == {rule}
    assert all(r.message for r in decision.reasons)


def test_sol_is_always_allowed_by_the_mint_allow_list() -> None:
    assert decide(replace(OPEN, allowed_mints=(USDC,)), SEND, RICH).verdict is Verdict.ALLOW


def test_a_denial_lists_every_failing_rule() -> None:
    rules = Rules(enabled=False, max_trade_lamports=1, allowed_mints=(USDC,))
    proposal = replace(SEND, mints=("Other1111111111111111111111111111111111111",))
    decision = decide(rules, proposal, replace(RICH, sol_balance=0))
    assert rules_of(decision.reasons) == {
        Rule.TRADING_DISABLED,
        Rule.TRADE_CAP,
        Rule.MINT_NOT_ALLOWED,
        Rule.RECIPIENT_NOT_ALLOWED,
        Rule.INSUFFICIENT_FUNDS,
    }
    cap = next(r for r in decision.reasons if r.rule is Rule.TRADE_CAP)
    assert (cap.limit, cap.observed) == ("1 lamports", "100000000 lamports")


def test_thresholds_hold_for_approval_and_can_be_skipped() -> None:
    rules = replace(OPEN, approval_threshold_lamports=10**8, approval_threshold_usd=10.0)
    held = decide(rules, SEND, RICH)
    assert held.verdict is Verdict.NEEDS_APPROVAL
    assert [r.rule for r in held.reasons] == [Rule.APPROVAL_THRESHOLD] * 2
    assert decide(rules, SEND, RICH, approval=False).verdict is Verdict.ALLOW
    assert decide(replace(rules, max_trade_lamports=1), SEND, RICH).verdict is Verdict.DENY


def test_decision_round_trips_through_json() -> None:
    decision = decide(Rules(), SEND, RICH)
    from puppet_chain.policy import Decision

    assert Decision.from_json(decision.to_json()) == decision


def test_policy_decides_at_least_5000_per_second() -> None:
    rules = replace(
        OPEN,
        max_trade_lamports=10**9,
        max_daily_usd=1000.0,
        allowed_mints=(USDC,),
        approval_threshold_lamports=10**9,
        min_seconds_between_actions=1,
    )
    started, n = time.perf_counter(), 5_000
    for _ in range(n):
        decide(rules, SEND, RICH)
    assert n / (time.perf_counter() - started) >= 5_000
