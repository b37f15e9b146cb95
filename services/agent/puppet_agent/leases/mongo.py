"""MongoDB lease store (PyMongo async): each operation is one atomic single-document update.

"Store time" is the server's clock, read from ``hello.localTime`` (pipeline updates with
``$$NOW`` would avoid the round trip, but not every MongoDB-compatible server has them). The
offset to the local clock is measured at ``open`` and refreshed every ``resync_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from puppet_agent.leases import Lease

Doc = dict[str, Any]


def _lease(doc: Doc) -> Lease:
    return Lease(doc["_id"], doc["replica_id"], doc["token"], doc["expires_at"])


class MongoLeaseStore:
    """Leases as documents ``{_id: key, replica_id, token, expires_at}`` in one collection."""

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        collection: str = "leases",
        clock: Callable[[], float] | None = None,
        resync_s: float = 30.0,
    ) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=5000, tz_aware=False
        )
        self._leases: AsyncCollection[Doc] = self._client[database][collection]
        self._clock = clock
        self._resync_s = resync_s
        self._offset = 0.0
        self._synced_at = float("-inf")

    async def open(self) -> None:
        await self._leases.create_index("expires_at")
        await self._now()

    async def close(self) -> None:
        await self._client.close()

    async def try_acquire(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        now = await self._now()
        expires = now + ttl_s
        mine = await self._leases.find_one_and_update(
            {"_id": key, "replica_id": replica_id, "expires_at": {"$gt": now}},
            {"$set": {"expires_at": expires}},
            return_document=ReturnDocument.AFTER,
        )
        if mine is not None:
            return _lease(mine)
        taken = await self._leases.find_one_and_update(
            {"_id": key, "expires_at": {"$lte": now}},
            {"$set": {"replica_id": replica_id, "expires_at": expires}, "$inc": {"token": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if taken is not None:
            return _lease(taken)
        try:
            await self._leases.insert_one(
                {"_id": key, "replica_id": replica_id, "token": 1, "expires_at": expires}
            )
        except DuplicateKeyError:
            return None
        return Lease(key, replica_id, 1, expires)

    async def renew(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        now = await self._now()
        doc = await self._leases.find_one_and_update(
            {"_id": key, "replica_id": replica_id, "expires_at": {"$gt": now}},
            {"$set": {"expires_at": now + ttl_s}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _lease(doc)

    async def renew_many(
        self, keys: Sequence[str], replica_id: str, ttl_s: float
    ) -> dict[str, Lease | None]:
        renewed = await asyncio.gather(*(self.renew(key, replica_id, ttl_s) for key in keys))
        return dict(zip(keys, renewed, strict=True))

    async def release(self, key: str, replica_id: str) -> bool:
        now = await self._now()
        done = await self._leases.update_one(
            {"_id": key, "replica_id": replica_id, "expires_at": {"$gt": now}},
            {"$set": {"replica_id": "", "expires_at": 0.0}},
        )
        return done.modified_count == 1

    async def holders(self) -> dict[str, Lease]:
        now = await self._now()
        return {
            doc["_id"]: _lease(doc) async for doc in self._leases.find({"expires_at": {"$gt": now}})
        }

    async def _now(self) -> float:
        """Store time: the injected clock, else the local clock corrected to the server's."""
        if self._clock is not None:
            return self._clock()
        local = time.time()
        if local - self._synced_at >= self._resync_s:
            reply = await self._client.admin.command("hello")
            after = time.time()
            server = reply["localTime"].replace(tzinfo=UTC).timestamp()
            self._offset = server - (local + after) / 2
            self._synced_at = after
            local = after
        return local + self._offset
