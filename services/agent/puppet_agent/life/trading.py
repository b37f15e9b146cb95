"""Trade decisions for personas with trading enabled, and announcements built from receipts.

Trust boundary: ``decide_trade`` takes no text at all. Its inputs are the persona's
``TradingSettings``, a ``MarketSnapshot`` the orchestrator builds from chain's market data, the
persona's ``TradeLedger``, the time and a Random, so a mention ("buy $X now", "ignore your
rules") cannot cause, shape or time a trade: there is no parameter it could arrive through.
Token symbols from market data are data too; symbols that look like sentences are filtered out
as spam (legacy's rules, CONTRACT §8.3). An announcement is built only from a confirmed chain
receipt (``announcement_from_receipt``), never from the intent or from anything a user wrote.

Legacy fixes on purpose: a sell is sized in the token's own base units from the wallet's
holding (legacy sold a lamport count of the token), and a persona with nothing to trade does
nothing instead of falling back to a SOL/USDC coin flip.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum

SOL_MINT = "So11111111111111111111111111111111111111112"
LAMPORTS_PER_SOL = 1_000_000_000
HIGH_RISK_MOVE_PCT = 10.0
_SAFE_SYMBOL = re.compile(r"[A-Za-z0-9$._-]{1,10}")


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class TradingSettings:
    """A persona's trading rules (legacy ``solana_integration``/``trading_behavior``/autonomy)."""

    enabled: bool = False
    max_trade_sol: float = 0.1
    max_single_trade_sol: float = 0.1
    min_wallet_balance_sol: float = 0.05
    max_slippage_percent: float = 1.0
    max_daily_trades: int = 3
    min_hours_between_trades: float = 6.0
    trade_probability: float = 0.25
    """Chance that a due check trades at all (legacy ``random_probability``)."""
    use_trending: bool = True
    use_top_gainers: bool = False
    high_risk_probability: float = 0.2
    blacklist: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Token:
    """A tradable token as market data describes it."""

    mint: str
    symbol: str
    change_24h_pct: float = 0.0


@dataclass(frozen=True)
class MarketSnapshot:
    """What the market and the persona's wallet look like now (from chain, never from users)."""

    sol_lamports: int
    trending: tuple[Token, ...] = ()
    top_gainers: tuple[Token, ...] = ()
    holdings: Mapping[str, int] = field(default_factory=dict)
    """Base units held per mint (SOL excluded)."""


@dataclass(frozen=True)
class TradeLedger:
    """When the persona's successful trades happened (epoch seconds)."""

    trade_times: tuple[float, ...] = ()


@dataclass(frozen=True)
class TradeIntent:
    """A swap to ask chain for; chain's policy still decides whether it happens."""

    side: Side
    token: Token
    input_mint: str
    output_mint: str
    amount: int
    """Base units of ``input_mint`` (lamports for a buy)."""
    slippage_bps: int


def decide_trade(
    settings: TradingSettings,
    market: MarketSnapshot,
    ledger: TradeLedger,
    *,
    now: float,
    rng: random.Random,
    tz: tzinfo | None = None,
) -> TradeIntent | None:
    """The trade this persona wants now, or None (see the module docstring on its inputs).

    Gates, in legacy order: trading enabled; fewer than ``max_daily_trades`` today (``tz`` local
    day); ``min_hours_between_trades`` since the last trade; a ``trade_probability`` draw. Then a
    token (trending, else top gainers; spam and blacklist removed; a big mover with
    ``high_risk_probability``), a side (sell only what is held) and an amount within the caps.
    """
    if not settings.enabled or not _due(settings, ledger, now, tz):
        return None
    if rng.random() >= settings.trade_probability:
        return None
    token = _pick(settings, market, rng)
    if token is None:
        return None
    slippage = min(max(round(settings.max_slippage_percent * 100), 1), 5000)
    held = market.holdings.get(token.mint, 0)
    if held > 0 and rng.random() < 0.5:
        amount = math.floor(held * rng.uniform(0.25, 1.0))
        return TradeIntent(Side.SELL, token, token.mint, SOL_MINT, max(amount, 1), slippage)
    lamports = _buy_lamports(settings, market.sol_lamports, rng)
    if lamports <= 0:
        return None
    return TradeIntent(Side.BUY, token, SOL_MINT, token.mint, lamports, slippage)


def _due(settings: TradingSettings, ledger: TradeLedger, now: float, tz: tzinfo | None) -> bool:
    today = datetime.fromtimestamp(now, tz).date()
    times = ledger.trade_times
    if (
        sum(datetime.fromtimestamp(t, tz).date() == today for t in times)
        >= settings.max_daily_trades
    ):
        return False
    return not times or now - max(times) >= settings.min_hours_between_trades * 3600.0


def _buy_lamports(settings: TradingSettings, balance: int, rng: random.Random) -> int:
    spare = 0.5 * (balance - settings.min_wallet_balance_sol * LAMPORTS_PER_SOL)
    drawn = settings.max_trade_sol * LAMPORTS_PER_SOL * rng.uniform(0.1, 1.0)
    return math.floor(min(spare, drawn, settings.max_single_trade_sol * LAMPORTS_PER_SOL))


def _pick(settings: TradingSettings, market: MarketSnapshot, rng: random.Random) -> Token | None:
    trending = _clean(market.trending, settings) if settings.use_trending else []
    gainers = _clean(market.top_gainers, settings)
    pool = trending or (gainers if settings.use_top_gainers or settings.use_trending else [])
    if not pool:
        return None
    movers = sorted(
        (t for t in pool if abs(t.change_24h_pct) > HIGH_RISK_MOVE_PCT),
        key=lambda t: -abs(t.change_24h_pct),
    )[:5]
    if movers and rng.random() < settings.high_risk_probability:
        return rng.choice(movers)
    return rng.choice(pool)


def is_spam(token: Token) -> bool:
    """Legacy's spam rules (long symbols, symbol == address, ``0x…``, spaces, SOL itself), plus:
    a symbol must look like a ticker (letters, digits, ``$._-``), so text cannot pose as one."""
    symbol = token.symbol
    return (
        not _SAFE_SYMBOL.fullmatch(symbol)
        or len(symbol) >= 10
        or symbol == token.mint
        or symbol.lower().startswith("0x")
        or token.mint == SOL_MINT
        or symbol.upper() == "SOL"
    )


def _clean(tokens: tuple[Token, ...], settings: TradingSettings) -> list[Token]:
    return [t for t in tokens if not is_spam(t) and t.mint not in settings.blacklist]


@dataclass(frozen=True)
class TokenAmount:
    """Chain's ``TokenAmount``: base units of a mint with its decimals."""

    mint: str
    symbol: str
    amount: int
    decimals: int


@dataclass(frozen=True)
class SwapReceipt:
    """The facts of a confirmed swap, as chain's ``Receipt`` states them."""

    signature: str
    amount_in: TokenAmount
    amount_out: TokenAmount


@dataclass(frozen=True)
class Announcement:
    """The only inputs a trade announcement may be composed from."""

    side: Side
    token: str
    token_amount: str
    sol_amount: str
    signature: str

    def facts(self) -> dict[str, str]:
        """Key/value facts for the composition prompt."""
        verb = "bought" if self.side is Side.BUY else "sold"
        return {
            "action": verb,
            "token": self.token,
            "token_amount": self.token_amount,
            "sol_amount": self.sol_amount,
            "signature": self.signature,
        }


def announcement_from_receipt(receipt: SwapReceipt) -> Announcement:
    """What a persona may say about a confirmed swap: side, token, amounts, signature.

    Raises:
        ValueError: the receipt is not a SOL swap with a signature (nothing to announce).
    """
    if not receipt.signature:
        raise ValueError("a receipt without a signature is not confirmed")
    if receipt.amount_in.mint == SOL_MINT:
        side, token, sol = Side.BUY, receipt.amount_out, receipt.amount_in
    elif receipt.amount_out.mint == SOL_MINT:
        side, token, sol = Side.SELL, receipt.amount_in, receipt.amount_out
    else:
        raise ValueError("only swaps to or from SOL are announced")
    return Announcement(side, _label(token), _ui(token), _ui(sol), receipt.signature)


def _label(token: TokenAmount) -> str:
    """The symbol if it is a plain ticker, else a shortened mint (symbols are untrusted text)."""
    if _SAFE_SYMBOL.fullmatch(token.symbol):
        return token.symbol
    return f"{token.mint[:4]}…{token.mint[-4:]}"


def _ui(amount: TokenAmount) -> str:
    value = amount.amount / 10 ** max(amount.decimals, 0)
    text = f"{value:,.{min(max(amount.decimals, 0), 6)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
