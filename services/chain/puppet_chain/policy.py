"""The policy engine: a pure function from rules, a proposal and usage to a verdict and reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

WSOL = "So11111111111111111111111111111111111111112"
LAMPORTS_PER_SOL = 1_000_000_000
DEFAULT_MAX_SLIPPAGE_BPS = 100


class Verdict(IntEnum):
    """Numbered as puppet.chain.v1.Verdict."""

    ALLOW = 1
    DENY = 2
    NEEDS_APPROVAL = 3


class Rule(IntEnum):
    """Numbered as puppet.chain.v1.PolicyRule."""

    TRADING_DISABLED = 1
    TRADE_CAP = 2
    DAILY_CAP = 3
    MIN_RESERVE = 4
    MINT_NOT_ALLOWED = 5
    RECIPIENT_NOT_ALLOWED = 6
    SLIPPAGE = 7
    SIMULATION_FAILED = 8
    APPROVAL_THRESHOLD = 9
    COOLDOWN = 10
    PRICE_UNAVAILABLE = 11
    INSUFFICIENT_FUNDS = 12


@dataclass(frozen=True, slots=True)
class Rules:
    """A wallet's policy, as in puppet.chain.v1.Policy (0 means no cap)."""

    enabled: bool = False
    max_trade_lamports: int = 0
    max_trade_usd: float = 0.0
    max_daily_lamports: int = 0
    max_daily_usd: float = 0.0
    max_daily_actions: int = 0
    min_reserve_lamports: int = 0
    allowed_mints: tuple[str, ...] = ()
    denied_mints: tuple[str, ...] = ()
    allowed_recipients: tuple[str, ...] = ()
    max_slippage_bps: int = 0
    simulate_before_send: bool = True
    approval_threshold_lamports: int = 0
    approval_threshold_usd: float = 0.0
    min_seconds_between_actions: int = 0
    update_time: float = 0.0

    @property
    def slippage_cap(self) -> int:
        return self.max_slippage_bps or DEFAULT_MAX_SLIPPAGE_BPS


@dataclass(frozen=True, slots=True)
class Proposal:
    """An action to decide, already valued by the caller (no I/O happens here)."""

    mints: tuple[str, ...]
    """Mints it touches (WSOL for SOL)."""
    recipient: str | None
    """Transfer recipient; None for swaps."""
    value_lamports: int | None
    """Value in lamports-equivalent; None when no price is known for an SPL mint."""
    value_usd: float | None
    """Value in US dollars; None when no price is known."""
    sol_out_lamports: int
    """SOL leaving the wallet, fees excluded."""
    fee_lamports: int = 5_000
    token_out: int = 0
    """SPL base units leaving the wallet (0 for SOL)."""
    slippage_bps: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """The wallet's state at decision time."""

    now: float
    sol_balance: int
    token_balance: int = 0
    spent_lamports: int = 0
    spent_usd: float = 0.0
    actions_today: int = 0
    last_action_time: float | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    rule: Rule
    message: str
    limit: str = ""
    observed: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[Reason, ...]
    value_lamports: int
    value_usd: float
    decide_time: float

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": int(self.verdict),
            "reasons": [[int(r.rule), r.message, r.limit, r.observed] for r in self.reasons],
            "value_lamports": self.value_lamports,
            "value_usd": self.value_usd,
            "decide_time": self.decide_time,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Decision:
        return cls(
            Verdict(doc["verdict"]),
            tuple(Reason(Rule(r[0]), r[1], r[2], r[3]) for r in doc["reasons"]),
            int(doc["value_lamports"]),
            float(doc["value_usd"]),
            float(doc["decide_time"]),
        )


def _sol(lamports: int) -> str:
    return f"{lamports / LAMPORTS_PER_SOL:g} SOL"


@dataclass(slots=True)
class _Findings:
    reasons: list[Reason] = field(default_factory=list)

    def add(self, rule: Rule, message: str, limit: str = "", observed: str = "") -> None:
        self.reasons.append(Reason(rule, message, limit, observed))


def decide(rules: Rules, proposal: Proposal, usage: Usage, *, approval: bool = True) -> Decision:
    """Every failing rule (DENY), else every approval threshold hit (NEEDS_APPROVAL), else ALLOW.

    approval=False skips the approval thresholds (deciding again when a human approves).
    """
    deny = _Findings()
    if not rules.enabled:
        deny.add(Rule.TRADING_DISABLED, "trading is disabled for this wallet")
    _check_mints(rules, proposal, deny)
    _check_recipient(rules, proposal, deny)
    _check_slippage(rules, proposal, deny)
    _check_caps(rules, proposal, usage, deny)
    _check_funds(rules, proposal, usage, deny)
    _check_cooldown(rules, usage, deny)
    value_lamports = proposal.value_lamports or 0
    value_usd = proposal.value_usd or 0.0
    if deny.reasons:
        return Decision(Verdict.DENY, tuple(deny.reasons), value_lamports, value_usd, usage.now)
    held = _Findings()
    if approval:
        _check_thresholds(rules, proposal, held)
    verdict = Verdict.NEEDS_APPROVAL if held.reasons else Verdict.ALLOW
    return Decision(verdict, tuple(held.reasons), value_lamports, value_usd, usage.now)


def _check_mints(rules: Rules, proposal: Proposal, out: _Findings) -> None:
    for mint in proposal.mints:
        if mint != WSOL and rules.allowed_mints and mint not in rules.allowed_mints:
            out.add(Rule.MINT_NOT_ALLOWED, f"mint {mint} is not in allowed_mints", observed=mint)
        elif mint in rules.denied_mints:
            out.add(Rule.MINT_NOT_ALLOWED, f"mint {mint} is in denied_mints", observed=mint)


def _check_recipient(rules: Rules, proposal: Proposal, out: _Findings) -> None:
    if proposal.recipient is not None and proposal.recipient not in rules.allowed_recipients:
        out.add(
            Rule.RECIPIENT_NOT_ALLOWED,
            f"recipient {proposal.recipient} is not in allowed_recipients",
            observed=proposal.recipient,
        )


def _check_slippage(rules: Rules, proposal: Proposal, out: _Findings) -> None:
    if proposal.slippage_bps > rules.slippage_cap:
        out.add(
            Rule.SLIPPAGE,
            f"slippage {proposal.slippage_bps} bps is over the cap of {rules.slippage_cap} bps",
            f"{rules.slippage_cap} bps",
            f"{proposal.slippage_bps} bps",
        )


def _check_caps(rules: Rules, proposal: Proposal, usage: Usage, out: _Findings) -> None:
    lamports, usd = proposal.value_lamports, proposal.value_usd
    needs_lamports = rules.max_trade_lamports or rules.max_daily_lamports
    needs_usd = rules.max_trade_usd or rules.max_daily_usd or rules.approval_threshold_usd
    if (needs_lamports or rules.approval_threshold_lamports) and lamports is None:
        out.add(Rule.PRICE_UNAVAILABLE, "no price is known to value this action in SOL")
    if needs_usd and usd is None:
        out.add(Rule.PRICE_UNAVAILABLE, "no price is known to value this action in USD")
    if lamports is not None:
        if rules.max_trade_lamports and lamports > rules.max_trade_lamports:
            out.add(
                Rule.TRADE_CAP,
                f"{_sol(lamports)} is over the per-trade cap of {_sol(rules.max_trade_lamports)}",
                f"{rules.max_trade_lamports} lamports",
                f"{lamports} lamports",
            )
        day = usage.spent_lamports + lamports
        if rules.max_daily_lamports and day > rules.max_daily_lamports:
            out.add(
                Rule.DAILY_CAP,
                f"{_sol(day)} today is over the daily cap of {_sol(rules.max_daily_lamports)}",
                f"{rules.max_daily_lamports} lamports",
                f"{day} lamports",
            )
    if usd is not None:
        if rules.max_trade_usd and usd > rules.max_trade_usd:
            out.add(
                Rule.TRADE_CAP,
                f"${usd:.2f} is over the per-trade cap of ${rules.max_trade_usd:.2f}",
                f"{rules.max_trade_usd} USD",
                f"{usd} USD",
            )
        day_usd = usage.spent_usd + usd
        if rules.max_daily_usd and day_usd > rules.max_daily_usd:
            out.add(
                Rule.DAILY_CAP,
                f"${day_usd:.2f} today is over the daily cap of ${rules.max_daily_usd:.2f}",
                f"{rules.max_daily_usd} USD",
                f"{day_usd} USD",
            )
    if rules.max_daily_actions and usage.actions_today + 1 > rules.max_daily_actions:
        out.add(
            Rule.DAILY_CAP,
            f"{usage.actions_today + 1} actions today is over the cap of {rules.max_daily_actions}",
            f"{rules.max_daily_actions} actions",
            f"{usage.actions_today + 1} actions",
        )


def _check_funds(rules: Rules, proposal: Proposal, usage: Usage, out: _Findings) -> None:
    needed = proposal.sol_out_lamports + proposal.fee_lamports
    if needed > usage.sol_balance or proposal.token_out > usage.token_balance:
        out.add(
            Rule.INSUFFICIENT_FUNDS,
            "the wallet cannot cover the amount plus fees",
            f"{usage.sol_balance} lamports",
            f"{needed} lamports",
        )
        return
    left = usage.sol_balance - needed
    if left < rules.min_reserve_lamports:
        out.add(
            Rule.MIN_RESERVE,
            f"{_sol(left)} would remain, under the reserve of {_sol(rules.min_reserve_lamports)}",
            f"{rules.min_reserve_lamports} lamports",
            f"{left} lamports",
        )


def _check_cooldown(rules: Rules, usage: Usage, out: _Findings) -> None:
    gap = rules.min_seconds_between_actions
    if gap and usage.last_action_time is not None and usage.now - usage.last_action_time < gap:
        waited = usage.now - usage.last_action_time
        out.add(
            Rule.COOLDOWN,
            f"only {waited:.0f} s since the last action; the policy asks for {gap} s",
            f"{gap} s",
            f"{waited:.0f} s",
        )


def _check_thresholds(rules: Rules, proposal: Proposal, out: _Findings) -> None:
    lamports, usd = proposal.value_lamports, proposal.value_usd
    threshold = rules.approval_threshold_lamports
    if threshold and lamports is not None and lamports >= threshold:
        out.add(
            Rule.APPROVAL_THRESHOLD,
            f"{_sol(lamports)} is at or above the approval threshold of {_sol(threshold)}",
            f"{threshold} lamports",
            f"{lamports} lamports",
        )
    threshold_usd = rules.approval_threshold_usd
    if threshold_usd and usd is not None and usd >= threshold_usd:
        out.add(
            Rule.APPROVAL_THRESHOLD,
            f"${usd:.2f} is at or above the approval threshold of ${threshold_usd:.2f}",
            f"{threshold_usd} USD",
            f"{usd} USD",
        )
