"""Per-persona daily budgets and usage accounting (UTC days, prices from settings)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from puppet_llm import metrics
from puppet_llm.failures import BudgetExhaustedError
from puppet_llm.settings import LlmSettings
from puppet_llm.store import BudgetRow, LlmStore, UsageCursor, UsageRow

log = logging.getLogger(__name__)

DAY_US = 86_400_000_000
USAGE_KEPT_DAYS = 400
REQUESTS_KEPT_US = DAY_US


def now_us() -> int:
    return time.time_ns() // 1_000


def day_of(us: int) -> int:
    """Start of the UTC day holding us."""
    return us - us % DAY_US


def rfc3339(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits with today's spending."""

    agent: str
    daily_token_limit: int
    daily_cost_limit_usd: float
    tokens_spent: int
    cost_spent_usd: float
    reset_time_us: int


@dataclass(frozen=True, slots=True)
class Spend:
    """What one service call cost, over all its attempts."""

    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    provider_ms: float = 0.0


@dataclass(slots=True)
class _Cached:
    """A replica's view of one persona's limits and today's spending."""

    row: BudgetRow
    day_us: int
    tokens: int
    cost: float
    expires: float


class BudgetBook:
    """Checks budgets before calls and records usage after them.

    The check reads a short-lived cache (settings.budget_cache_s) so that a call costs one store
    write, not three round trips; GetBudget and UpdateBudget always go to the store.
    """

    def __init__(self, store: LlmStore, settings: LlmSettings) -> None:
        self._store = store
        self._settings = settings
        self._pruned_day = 0
        self._unpriced: set[str] = set()
        self._cache: dict[str, _Cached] = {}

    def cost(self, provider: str, model: str, prompt: int, completion: int) -> float:
        if provider in ("local", "fake"):
            return 0.0
        price = self._settings.prices.get(model)
        if price is None:
            if model not in self._unpriced:
                self._unpriced.add(model)
                log.warning("no price configured for model %s; its usage costs 0", model)
            return 0.0
        return (prompt * price.input_per_1m + completion * price.output_per_1m) / 1e6

    async def limits(self, agent: str) -> BudgetRow:
        stored = await self._store.get_budget(agent)
        if stored is not None:
            return stored
        return BudgetRow(
            agent,
            self._settings.default_daily_token_limit,
            self._settings.default_daily_cost_limit_usd,
        )

    async def _load(self, agent: str) -> _Cached:
        today = day_of(now_us())
        row = await self.limits(agent)
        tokens, cost = await self._store.spent(agent, today)
        cached = _Cached(row, today, tokens, cost, time.monotonic() + self._settings.budget_cache_s)
        self._cache[agent] = cached
        return cached

    async def get(self, agent: str) -> Budget:
        c = await self._load(agent)
        return Budget(
            agent,
            c.row.daily_token_limit,
            c.row.daily_cost_limit_usd,
            c.tokens,
            c.cost,
            c.day_us + DAY_US,
        )

    async def update(self, row: BudgetRow) -> Budget:
        await self._store.put_budget(row)
        return await self.get(row.agent)

    async def check(self, agent: str) -> None:
        """Raise BudgetExhaustedError when today's tokens or dollars reached a limit."""
        c = self._cache.get(agent)
        if c is None or c.expires <= time.monotonic() or c.day_us != day_of(now_us()):
            c = await self._load(agent)
        reset = rfc3339(c.day_us + DAY_US)
        if c.row.daily_token_limit and c.tokens >= c.row.daily_token_limit:
            raise BudgetExhaustedError(agent, "tokens", reset)
        if c.row.daily_cost_limit_usd and c.cost >= c.row.daily_cost_limit_usd:
            raise BudgetExhaustedError(agent, "cost", reset)

    async def record(self, agent: str, spend: Spend) -> None:
        """Charge one call (nothing when no model answered) and export it."""
        if spend.attempts == 0:
            return
        now = now_us()
        today = day_of(now)
        await self._store.add_usage(
            UsageRow(
                agent,
                today,
                spend.provider,
                spend.model,
                1,
                spend.prompt_tokens,
                spend.completion_tokens,
                spend.cost_usd,
            )
        )
        cached = self._cache.get(agent)
        if cached is not None and cached.day_us == today:
            cached.tokens += spend.prompt_tokens + spend.completion_tokens
            cached.cost += spend.cost_usd
        metrics.record(
            agent,
            spend.provider,
            spend.model,
            spend.prompt_tokens,
            spend.completion_tokens,
            spend.cost_usd,
        )
        if today != self._pruned_day:
            self._pruned_day = today
            await self._store.prune(today - USAGE_KEPT_DAYS * DAY_US, now - REQUESTS_KEPT_US)

    async def usage(
        self,
        agent: str | None,
        start_us: int,
        end_us: int,
        after: UsageCursor | None,
        limit: int,
    ) -> list[UsageRow]:
        return await self._store.list_usage(agent, day_of(start_us), end_us, after, limit)
