"""MongoDB adapter (production): AsyncMongoClient; usage rows are upserted with $inc."""

from __future__ import annotations

from typing import Any

from bson import Binary
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from puppet_llm.store import BudgetRow, StoredRequest, UsageCursor, UsageRow

Doc = dict[str, Any]
_SORT = [
    ("day_us", DESCENDING),
    ("agent", ASCENDING),
    ("provider", ASCENDING),
    ("model", ASCENDING),
]


def _usage(d: Doc) -> UsageRow:
    return UsageRow(
        agent=d["agent"],
        day_us=d["day_us"],
        provider=d["provider"],
        model=d["model"],
        calls=d["calls"],
        prompt_tokens=d["prompt_tokens"],
        completion_tokens=d["completion_tokens"],
        cost_usd=d["cost_usd"],
    )


def _after(c: UsageCursor) -> Doc:
    day, agent, provider, model = c
    return {
        "$or": [
            {"day_us": {"$lt": day}},
            {"day_us": day, "agent": {"$gt": agent}},
            {"day_us": day, "agent": agent, "provider": {"$gt": provider}},
            {"day_us": day, "agent": agent, "provider": provider, "model": {"$gt": model}},
        ]
    }


class MongoStore:
    """Collections budgets, usage and requests in one database."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=5000, tz_aware=False
        )
        self._db: AsyncDatabase[Doc] = self._client[database]

    async def open(self) -> None:
        await self._db.usage.create_index(
            [
                ("day_us", ASCENDING),
                ("agent", ASCENDING),
                ("provider", ASCENDING),
                ("model", ASCENDING),
            ],
            unique=True,
        )
        await self._db.usage.create_index([("agent", ASCENDING), ("day_us", ASCENDING)])
        await self._db.requests.create_index(
            [("agent", ASCENDING), ("request_id", ASCENDING)], unique=True
        )

    async def close(self) -> None:
        await self._client.close()

    async def get_budget(self, agent: str) -> BudgetRow | None:
        doc = await self._db.budgets.find_one({"_id": agent})
        if doc is None:
            return None
        return BudgetRow(agent, doc["token_limit"], doc["cost_limit"])

    async def put_budget(self, row: BudgetRow) -> None:
        await self._db.budgets.update_one(
            {"_id": row.agent},
            {
                "$set": {
                    "token_limit": row.daily_token_limit,
                    "cost_limit": row.daily_cost_limit_usd,
                }
            },
            upsert=True,
        )

    async def add_usage(self, delta: UsageRow) -> None:
        key = {
            "day_us": delta.day_us,
            "agent": delta.agent,
            "provider": delta.provider,
            "model": delta.model,
        }
        await self._db.usage.update_one(
            key,
            {
                "$inc": {
                    "calls": delta.calls,
                    "prompt_tokens": delta.prompt_tokens,
                    "completion_tokens": delta.completion_tokens,
                    "cost_usd": delta.cost_usd,
                }
            },
            upsert=True,
        )

    async def spent(self, agent: str, day_us: int) -> tuple[int, float]:
        tokens, cost = 0, 0.0
        async for d in self._db.usage.find({"agent": agent, "day_us": day_us}):
            tokens += d["prompt_tokens"] + d["completion_tokens"]
            cost += d["cost_usd"]
        return tokens, cost

    async def list_usage(
        self,
        agent: str | None,
        start_us: int,
        end_us: int,
        after: UsageCursor | None,
        limit: int,
    ) -> list[UsageRow]:
        query: Doc = {"day_us": {"$gte": start_us, "$lt": end_us}}
        if agent is not None:
            query["agent"] = agent
        if after is not None:
            query = {"$and": [query, _after(after)]}
        cursor = self._db.usage.find(query).sort(_SORT).limit(limit)
        return [_usage(d) for d in await cursor.to_list(None)]

    async def get_request(self, agent: str, request_id: str) -> StoredRequest | None:
        d = await self._db.requests.find_one({"agent": agent, "request_id": request_id})
        if d is None:
            return None
        return StoredRequest(
            agent, request_id, d["op"], d["fingerprint"], bytes(d["response"]), d["create_time_us"]
        )

    async def put_request(self, request: StoredRequest) -> None:
        await self._db.requests.update_one(
            {"agent": request.agent, "request_id": request.request_id},
            {
                "$set": {
                    "op": request.op,
                    "fingerprint": request.fingerprint,
                    "response": Binary(request.response),
                    "create_time_us": request.create_time_us,
                }
            },
            upsert=True,
        )

    async def prune(self, usage_before_us: int, requests_before_us: int) -> None:
        await self._db.usage.delete_many({"day_us": {"$lt": usage_before_us}})
        await self._db.requests.delete_many({"create_time_us": {"$lt": requests_before_us}})
