"""MongoDB adapter of the agent store: AsyncMongoClient, single-document atomic updates."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError

from puppet_agent.store import EventRecord, PersonaRecord, PostRecord, RequestRecord

Doc = dict[str, Any]
_NO_ID = {"_id": 0}


def _persona(doc: Doc) -> PersonaRecord:
    return PersonaRecord(
        doc["id"],
        doc["config"],
        doc["seq"],
        doc["version"],
        doc["paused"],
        doc["pause_time"],
        doc["create_time"],
        doc["update_time"],
    )


def _event(doc: Doc) -> EventRecord:
    return EventRecord(
        doc["id"],
        doc["type"],
        doc["data"],
        tuple(doc["targets"]),
        doc["priority"],
        doc["create_time"],
        doc["execute_after"],
        doc["processed_at"],
        doc["seq"],
    )


def _post(doc: Doc) -> PostRecord:
    doc.pop("_id", None)
    return PostRecord(**doc)


class MongoStore:
    """Production store: collections personas, events, posts, requests, counters."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
        self._db = self._client[database]

    async def open(self) -> None:
        await self._db.personas.create_index([("id", ASCENDING)], unique=True)
        await self._db.personas.create_index([("seq", ASCENDING)])
        await self._db.events.create_index([("seq", ASCENDING)])
        await self._db.posts.create_index([("agent", ASCENDING), ("seq", DESCENDING)])
        await self._db.requests.create_index(
            [("scope", ASCENDING), ("request_id", ASCENDING)], unique=True
        )

    async def close(self) -> None:
        await self._client.close()

    async def _next(self, counter: str) -> int:
        doc = await self._db.counters.find_one_and_update(
            {"_id": counter},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return int(doc["value"])

    async def upsert_persona(
        self, persona_id: str, config: dict[str, Any], now: float
    ) -> PersonaRecord:
        doc = await self._db.personas.find_one_and_update(
            {"id": persona_id},
            {"$set": {"config": config, "update_time": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return _persona(doc)
        fresh = {
            "id": persona_id,
            "config": config,
            "seq": await self._next("personas"),
            "version": 1,
            "paused": False,
            "pause_time": None,
            "create_time": now,
            "update_time": now,
        }
        try:
            await self._db.personas.insert_one(fresh)
        except DuplicateKeyError:
            return await self.upsert_persona(persona_id, config, now)
        return _persona(fresh)

    async def get_persona(self, persona_id: str) -> PersonaRecord | None:
        doc = await self._db.personas.find_one({"id": persona_id})
        return _persona(doc) if doc else None

    async def list_personas(
        self, *, after_seq: int = 0, limit: int = 1_000, paused: bool | None = None
    ) -> list[PersonaRecord]:
        query: Doc = {"seq": {"$gt": after_seq}}
        if paused is not None:
            query["paused"] = paused
        cursor = self._db.personas.find(query).sort("seq", ASCENDING).limit(limit)
        return [_persona(doc) async for doc in cursor]

    async def count_personas(self) -> int:
        return await self._db.personas.count_documents({})

    async def delete_persona(self, persona_id: str) -> bool:
        result = await self._db.personas.delete_one({"id": persona_id})
        return result.deleted_count > 0

    async def set_paused(self, persona_id: str, paused: bool, now: float) -> PersonaRecord | None:
        doc = await self._db.personas.find_one_and_update(
            {"id": persona_id, "paused": not paused},
            {"$set": {"paused": paused, "pause_time": now if paused else None, "update_time": now}},
            return_document=ReturnDocument.AFTER,
        )
        return _persona(doc) if doc else await self.get_persona(persona_id)

    async def add_event(self, event: EventRecord) -> EventRecord:
        stored = EventRecord(**{**asdict(event), "seq": await self._next("events")})
        doc = asdict(stored)
        doc["targets"] = list(stored.targets)
        await self._db.events.insert_one(doc)
        return stored

    async def mark_processed(self, event_id: str, at: float) -> None:
        await self._db.events.update_one({"id": event_id}, {"$set": {"processed_at": at}})

    async def pending_events(self) -> list[EventRecord]:
        cursor = self._db.events.find({"processed_at": None}).sort("seq", ASCENDING)
        return [_event(doc) async for doc in cursor]

    async def list_processed(self, *, before_seq: int | None, limit: int) -> list[EventRecord]:
        query: Doc = {"processed_at": {"$ne": None}}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self._db.events.find(query).sort("seq", DESCENDING).limit(limit)
        return [_event(doc) async for doc in cursor]

    async def add_post(self, post: PostRecord) -> PostRecord:
        stored = PostRecord(**{**asdict(post), "seq": await self._next("posts")})
        await self._db.posts.insert_one(asdict(stored))
        return stored

    async def update_post(
        self, post_id: str, *, delivery: str, social_post: str, scheduled_time: float | None
    ) -> None:
        await self._db.posts.update_one(
            {"id": post_id},
            {
                "$set": {
                    "delivery": delivery,
                    "social_post": social_post,
                    "scheduled_time": scheduled_time,
                }
            },
        )

    async def list_posts(
        self, agent: str, *, delivery: str | None, before_seq: int | None, limit: int
    ) -> list[PostRecord]:
        query: Doc = {"agent": agent}
        if delivery is not None:
            query["delivery"] = delivery
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self._db.posts.find(query).sort("seq", DESCENDING).limit(limit)
        return [_post(doc) async for doc in cursor]

    async def recall_request(self, scope: str, request_id: str) -> RequestRecord | None:
        doc = await self._db.requests.find_one({"scope": scope, "request_id": request_id}, _NO_ID)
        return RequestRecord(**doc) if doc else None

    async def remember_request(self, record: RequestRecord) -> RequestRecord:
        with contextlib.suppress(DuplicateKeyError):
            await self._db.requests.insert_one(asdict(record))
        stored = await self.recall_request(record.scope, record.request_id)
        assert stored is not None
        return stored
