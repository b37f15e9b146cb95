"""Autonomous trading decisions from a persona file (legacy §8): when, what and how much."""

from __future__ import annotations

import hashlib
import logging
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from puppet.chain.v1 import chain_pb2
from puppet_runtime import FailedPrecondition

if TYPE_CHECKING:
    from puppet_agent.clients.chain import ChainClient
    from puppet_agent.clients.memory import MemoryClient

log = logging.getLogger(__name__)

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
    min_reserve_lamports: int = 0
    max_slippage_bps: int = 100

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
    safety = ("solana_integration", "trade_safety")
    min_balance = _number(_get(config, *safety, "min_wallet_balance_sol"), 0.05)
    slippage = _number(_get(config, *safety, "max_slippage_percent"), 1.0)
    return TradingPlan(
        min_hours_between_trades=_number(frequency.get("min_hours_between_trades"), 6.0),
        probability=min(max(_number(frequency.get("random_probability"), 0.25), 0.0), 1.0),
        max_trade_sol=max(min(caps), 0.0),
        max_daily_trades=int(_number(rules.get("max_daily_trades"), 3)),
        output_mints=outputs,
        min_reserve_lamports=int(max(min_balance, 0.0) * LAMPORTS_PER_SOL),
        max_slippage_bps=int(min(max(round(slippage * 100), 1), 5000)),
    )


def decimal(amount: int, decimals: int) -> str:
    """Base units as a decimal string ("0.25")."""
    if decimals <= 0:
        return str(amount)
    text = f"{amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")
    return text or "0"


def policy_for(config: dict[str, Any]) -> tuple[chain_pb2.Policy, list[str]]:
    """The chain policy a persona file asks for, and its field mask.

    A trading persona gets its caps (single trade, daily count, reserve, slippage, gap between
    trades) and its tradable mints; transfers stay denied (no allowed recipients). A persona that
    does not trade gets the master switch off.
    """
    trades = plan(config)
    if trades is None:
        return chain_pb2.Policy(enabled=False), ["enabled"]
    policy = chain_pb2.Policy(
        enabled=True,
        max_trade_lamports=int(trades.max_trade_sol * LAMPORTS_PER_SOL),
        max_daily_actions=trades.max_daily_trades,
        min_reserve_lamports=trades.min_reserve_lamports,
        allowed_mints=list(trades.output_mints),
        allowed_recipients=[],
        max_slippage_bps=trades.max_slippage_bps,
        min_seconds_between_actions=int(trades.min_hours_between_trades * 3600),
    )
    return policy, list(POLICY_FIELDS)


POLICY_FIELDS = (
    "enabled",
    "max_trade_lamports",
    "max_daily_actions",
    "min_reserve_lamports",
    "allowed_mints",
    "allowed_recipients",
    "max_slippage_bps",
    "min_seconds_between_actions",
)


def wallet_id(agent_id: str) -> str:
    """The chain {wallet} id of a persona: its id when it fits chain's 64 characters."""
    if len(agent_id) <= 64:
        return agent_id
    digest = hashlib.sha256(agent_id.encode()).hexdigest()[:15]
    return f"{agent_id[:48]}-{digest}"


def private_key(raw: dict[str, Any]) -> str | None:
    """The persona file's solana_integration.private_key, if set (handed to chain only)."""
    key = _get(raw, "solana_integration", "private_key")
    return key if isinstance(key, str) and key.strip() else None


POLICY_STATE = "chain_policy"
"""Memory state key: the digest of the policy last applied from the persona file."""


def policy_digest(raw: dict[str, Any]) -> str:
    """A digest of the policy a persona file asks for (to notice a changed file)."""
    policy, fields = policy_for(raw)
    body = policy.SerializeToString(deterministic=True) + ",".join(fields).encode()
    return hashlib.sha256(body).hexdigest()[:32]


async def setup_wallet(
    chain: ChainClient,
    memory: MemoryClient,
    agent_id: str,
    raw: dict[str, Any],
    *,
    applied: str | None = None,
) -> chain_pb2.Wallet | None:
    """Make sure chain holds this persona's wallet with the policy of its file (idempotent).

    A trading persona without a wallet gets one: ImportWallet when the file carries
    ``solana_integration.private_key`` (sent to chain only: never stored, returned or logged
    here), else CreateWallet. The file's policy is then applied (UpdatePolicy with chain's admin
    token when configured, only when chain's differs) unless ``applied``, the digest recorded in
    memory state at the last application, says this file's policy was applied already: so an
    operator's later change at chain (a kill switch, say) holds until the persona file changes.
    A refused policy update (no admin token, say) is logged and left to the operator, since
    chain's current policy still decides every action. A persona that does not trade gets no
    wallet, and an existing one gets its policy switched off. Returns the wallet (None for a
    persona without one that does not trade).

    Raises:
        ServiceError: INVALID_ARGUMENT when chain refuses the key; UNAVAILABLE when chain is;
            FAILED_PRECONDITION (CHAIN_REFUSED) when chain refuses to make the wallet.
    """
    wallet = await chain.wallet(agent_id)
    digest = policy_digest(raw)
    if wallet is not None and applied == digest:
        return wallet
    done = "wallet kept"
    if wallet is None:
        if plan(raw) is None:
            return None
        wallet, done = await _make_wallet(chain, agent_id, raw)
    done += await _apply_policy(chain, memory, agent_id, wallet, raw)
    log.info("chain setup of %s (%s): %s", agent_id, wallet.name, done)
    return wallet


async def _make_wallet(
    chain: ChainClient, agent_id: str, raw: dict[str, Any]
) -> tuple[chain_pb2.Wallet, str]:
    key = private_key(raw)
    request_id = f"wallet-{wallet_id(agent_id)}"[:128]
    if key is not None:
        imported = await chain.import_wallet(agent_id, wallet_id(agent_id), key, request_id)
        return imported, "wallet imported"
    made = await chain.create_wallet(agent_id, wallet_id(agent_id), request_id)
    return made, "wallet created"


async def _apply_policy(
    chain: ChainClient,
    memory: MemoryClient,
    agent_id: str,
    wallet: chain_pb2.Wallet,
    raw: dict[str, Any],
) -> str:
    policy, fields = policy_for(raw)
    policy.name = f"{wallet.name}/policy"
    try:
        current = await chain.policy(policy.name)
        if all(getattr(current, f) == getattr(policy, f) for f in fields):
            done = ", policy kept"
        else:
            await chain.update_policy(policy, fields)
            done = ", policy set"
    except FailedPrecondition as err:
        log.warning("chain policy of %s not set: %s", agent_id, err.message)
        return ", policy not set"
    await memory.set_state(agent_id, POLICY_STATE, policy_digest(raw))
    return done
