"""Autonomous trading decisions from a persona file (legacy §8): when, what and how much."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

SOL_MINT = "So11111111111111111111111111111111111111112"
LAMPORTS_PER_SOL = 1_000_000_000


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


@dataclass(frozen=True)
class TradingPlan:
    """What a persona file allows (every cap applies; the chain policy has the last word)."""

    min_hours_between_trades: float
    probability: float
    max_trade_sol: float
    max_daily_trades: int
    output_mints: tuple[str, ...]

    def draw_lamports(self, rng: random.Random) -> int:
        """Legacy: max_trade * U(0.1, 1), in lamports."""
        return int(self.max_trade_sol * LAMPORTS_PER_SOL * rng.uniform(0.1, 1.0))

    def due(self, rng: random.Random, *, now: float, last: float | None, today: int) -> bool:
        """Whether to try a trade now (legacy shouldTrade)."""
        if today >= self.max_daily_trades:
            return False
        if last is not None and now - last < self.min_hours_between_trades * 3600:
            return False
        return rng.random() <= self.probability


def plan(config: dict[str, Any]) -> TradingPlan | None:
    """The persona's trading plan, or None when it does not trade."""
    if _get(config, "solana_integration", "trading_enabled") is not True:
        return None
    behavior = _get(config, "behavior", "trading_behavior") or {}
    rules = _get(config, "agent_kit_integration", "autonomy_rules") or {}
    caps = [
        _number(_get(config, "solana_integration", "trade_safety", "max_trade_amount_sol"), 0.1),
        _number(rules.get("max_single_trade_amount_sol"), math.inf),
        _number(behavior.get("max_trade_amount_per_transaction"), math.inf),
    ]
    blacklist = set(_get(behavior, "allowed_tokens", "blacklist") or [])
    tradable = _get(behavior, "allowed_tokens", "always_tradable") or []
    outputs = tuple(
        m for m in tradable if isinstance(m, str) and m != SOL_MINT and m not in blacklist
    )
    if not outputs:
        return None
    frequency = behavior.get("trading_frequency") or {}
    return TradingPlan(
        min_hours_between_trades=_number(frequency.get("min_hours_between_trades"), 6.0),
        probability=min(max(_number(frequency.get("random_probability"), 0.25), 0.0), 1.0),
        max_trade_sol=max(min(caps), 0.0),
        max_daily_trades=int(_number(rules.get("max_daily_trades"), 3)),
        output_mints=outputs,
    )


def decimal(amount: int, decimals: int) -> str:
    """Base units as a decimal string ("0.25")."""
    if decimals <= 0:
        return str(amount)
    text = f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"
