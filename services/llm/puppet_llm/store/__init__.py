"""The store port: budgets, daily usage and idempotent request results, with their rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

UsageCursor = tuple[int, str, str, str]
"""Where a usage page ends: (day_us, agent, provider, model) of its last row."""


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """A persona's stored daily limits (0 means unlimited)."""

    agent: str
    daily_token_limit: int
    daily_cost_limit_usd: float


@dataclass(frozen=True, slots=True)
class UsageRow:
    """What one persona spent with one model on one UTC day (or one call's increment of it)."""

    agent: str
    day_us: int
    provider: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @property
    def cursor(self) -> UsageCursor:
        return (self.day_us, self.agent, self.provider, self.model)


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """The first answer to a call made with a request_id."""

    agent: str
    request_id: str
    op: str
    fingerprint: str
    response: bytes
    create_time_us: int


class LlmStore(Protocol):
    """Persistence of the llm service. Adapters: SqliteStore (default), MongoStore."""

    async def open(self) -> None:
        """Create tables or collections and indexes."""
        ...

    async def close(self) -> None: ...

    async def get_budget(self, agent: str) -> BudgetRow | None: ...

    async def put_budget(self, row: BudgetRow) -> None:
        """Create or replace the persona's limits."""
        ...

    async def add_usage(self, delta: UsageRow) -> None:
        """Add delta's counters to its (agent, day, provider, model) row, creating it."""
        ...

    async def spent(self, agent: str, day_us: int) -> tuple[int, float]:
        """Tokens (prompt + completion) and dollars the persona spent on that day."""
        ...

    async def list_usage(
        self,
        agent: str | None,
        start_us: int,
        end_us: int,
        after: UsageCursor | None,
        limit: int,
    ) -> list[UsageRow]:
        """Rows with start_us <= day_us < end_us (every persona when agent is None), newest day
        first, then by agent, provider and model, strictly after the cursor."""
        ...

    async def get_request(self, agent: str, request_id: str) -> StoredRequest | None: ...

    async def put_request(self, request: StoredRequest) -> None:
        """Store (or replace an expired) request result."""
        ...

    async def prune(self, usage_before_us: int, requests_before_us: int) -> None:
        """Forget usage days and request results older than the given times."""
        ...
