"""SQLite adapter (the embedded default): aiosqlite in WAL mode, one file in the data dir."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from puppet_llm.store import BudgetRow, StoredRequest, UsageCursor, UsageRow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
  agent TEXT PRIMARY KEY, token_limit INTEGER NOT NULL, cost_limit REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (
  day_us INTEGER NOT NULL, agent TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
  calls INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL, PRIMARY KEY (day_us, agent, provider, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_by_agent ON usage (agent, day_us);
CREATE TABLE IF NOT EXISTS requests (
  agent TEXT NOT NULL, request_id TEXT NOT NULL, op TEXT NOT NULL, fingerprint TEXT NOT NULL,
  response BLOB NOT NULL, create_time_us INTEGER NOT NULL, PRIMARY KEY (agent, request_id)
) WITHOUT ROWID;
"""
_USAGE_COLS = "agent, day_us, provider, model, calls, prompt_tokens, completion_tokens, cost_usd"


class SqliteStore:
    """One connection; aiosqlite runs it on its own thread, so calls are serialised."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteStore.open() was not called")
        return self._db

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own transaction, one hop to the SQLite thread.
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.executescript(_SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def get_budget(self, agent: str) -> BudgetRow | None:
        async with self.db.execute(
            "SELECT token_limit, cost_limit FROM budgets WHERE agent = ?", (agent,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else BudgetRow(agent, row[0], row[1])

    async def put_budget(self, row: BudgetRow) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO budgets VALUES (?, ?, ?)",
            (row.agent, row.daily_token_limit, row.daily_cost_limit_usd),
        )

    async def add_usage(self, delta: UsageRow) -> None:
        await self.db.execute(
            f"INSERT INTO usage ({_USAGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (day_us, agent, provider, model) DO UPDATE SET "
            "calls = calls + excluded.calls, prompt_tokens = prompt_tokens + "
            "excluded.prompt_tokens, completion_tokens = completion_tokens + "
            "excluded.completion_tokens, cost_usd = cost_usd + excluded.cost_usd",
            (
                delta.agent,
                delta.day_us,
                delta.provider,
                delta.model,
                delta.calls,
                delta.prompt_tokens,
                delta.completion_tokens,
                delta.cost_usd,
            ),
        )

    async def spent(self, agent: str, day_us: int) -> tuple[int, float]:
        async with self.db.execute(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"
            " FROM usage WHERE agent = ? AND day_us = ?",
            (agent, day_us),
        ) as cur:
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]), float(row[1])

    async def list_usage(
        self,
        agent: str | None,
        start_us: int,
        end_us: int,
        after: UsageCursor | None,
        limit: int,
    ) -> list[UsageRow]:
        where = ["day_us >= ?", "day_us < ?"]
        args: list[object] = [start_us, end_us]
        if agent is not None:
            where.append("agent = ?")
            args.append(agent)
        if after is not None:
            where.append("(day_us < ? OR (day_us = ? AND (agent, provider, model) > (?, ?, ?)))")
            args += [after[0], after[0], after[1], after[2], after[3]]
        sql = (
            f"SELECT {_USAGE_COLS} FROM usage WHERE {' AND '.join(where)} "
            "ORDER BY day_us DESC, agent, provider, model LIMIT ?"
        )
        async with self.db.execute(sql, (*args, limit)) as cur:
            rows = await cur.fetchall()
        return [UsageRow(*r) for r in rows]

    async def get_request(self, agent: str, request_id: str) -> StoredRequest | None:
        async with self.db.execute(
            "SELECT op, fingerprint, response, create_time_us FROM requests "
            "WHERE agent = ? AND request_id = ?",
            (agent, request_id),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return StoredRequest(agent, request_id, row[0], row[1], bytes(row[2]), row[3])

    async def put_request(self, request: StoredRequest) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?, ?)",
            (
                request.agent,
                request.request_id,
                request.op,
                request.fingerprint,
                request.response,
                request.create_time_us,
            ),
        )

    async def prune(self, usage_before_us: int, requests_before_us: int) -> None:
        await self.db.execute("DELETE FROM usage WHERE day_us < ?", (usage_before_us,))
        await self.db.execute(
            "DELETE FROM requests WHERE create_time_us < ?", (requests_before_us,)
        )
