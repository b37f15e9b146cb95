"""MongoDB adapter (production): AsyncMongoClient; multi-document writes in transactions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from puppet_memory.store import (
    Admit,
    IndexSnapshot,
    Insert,
    Inserted,
    Kind,
    MemoryChange,
    MemoryRow,
    PersonaChange,
    PersonaExistsError,
    PersonaRow,
    RelationshipChange,
    RelationshipRow,
    RevisionConflictError,
    Vector,
)
from puppet_memory.store.mongo import writes
from puppet_memory.store.mongo.docs import (
    COUNTERS,
    Db,
    Doc,
    claim,
    get_memories,
    memory_of,
    persona_in,
    persona_of,
    snapshot,
)
from puppet_memory.store.records import persona_state, relationship_doc, relationship_row

T = TypeVar("T")


class MongoStore:
    """Collections personas, memories, relationships, requests in one database."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=5000, tz_aware=False
        )
        self._db: Db = self._client[database]

    async def open(self) -> None:
        existing = set(await self._db.list_collection_names())
        for name in {"personas", "memories", "relationships", "requests"} - existing:
            # Created up front: a transaction cannot create a collection on first read.
            await self._db.create_collection(name)
        await self._db.memories.create_index(
            [("agent", ASCENDING), ("memory_id", ASCENDING)], unique=True
        )
        await self._db.memories.create_index(
            [("agent", ASCENDING), ("create_time_us", ASCENDING), ("memory_id", ASCENDING)]
        )
        await self._db.relationships.create_index(
            [("agent", ASCENDING), ("counterparty", ASCENDING)], unique=True
        )
        await self._db.requests.create_index(
            [("agent", ASCENDING), ("request_id", ASCENDING)], unique=True
        )

    async def close(self) -> None:
        await self._client.close()

    async def _txn(self, body: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with self._client.start_session() as session:
            return await session.with_transaction(body)

    # personas

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        async def body(s: AsyncClientSession) -> PersonaRow:
            found = await self._db.personas.find_one({"_id": row.agent}, session=s)
            if found is not None:
                if request_id and found.get("create_request_id") == request_id:
                    return persona_of(found)
                raise PersonaExistsError(row.agent)
            doc: Doc = {
                "_id": row.agent,
                "state": persona_state(row),
                "create_time_us": row.create_time_us,
                "create_request_id": request_id,
                "embedding_model": "",
                "embedding_dimension": 0,
                "state_rev": 0,
                **dict.fromkeys(COUNTERS, 0),
            }
            await self._db.personas.insert_one(doc, session=s)
            return persona_of(doc)

        return await self._txn(body)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        doc = await self._db.personas.find_one({"_id": agent})
        return None if doc is None else persona_of(doc)

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]:
        cursor = self._db.personas.find({"_id": {"$gt": after}}).sort("_id", ASCENDING)
        return [persona_of(d) for d in await cursor.limit(limit).to_list(None)]

    async def delete_persona(self, agent: str) -> bool:
        async def body(s: AsyncClientSession) -> bool:
            gone = await self._db.personas.delete_one({"_id": agent}, session=s)
            if gone.deleted_count == 0:
                return False
            for name in ("memories", "relationships", "requests"):
                await self._db[name].delete_many({"agent": agent}, session=s)
            return True

        return await self._txn(body)

    async def mutate_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> tuple[PersonaRow, bool]:
        async def body(s: AsyncClientSession) -> tuple[PersonaRow, bool]:
            raw = await persona_in(self._db, s, agent)
            current = persona_of(raw)
            if not await claim(self._db, s, agent, request_id, op, ""):
                return current, False
            state = persona_state(change(current))
            done = await self._db.personas.find_one_and_update(
                {"_id": agent, "state_rev": raw["state_rev"]},
                {"$set": {"state": state}, "$inc": {"state_rev": 1}},
                session=s,
                return_document=ReturnDocument.AFTER,
            )
            if done is None:
                raise RevisionConflictError(agent)
            return persona_of(done), True

        return await self._txn(body)

    # memories

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        return await self._txn(lambda s: writes.insert(self._db, s, agent, inserts, admit))

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        return await get_memories(self._db, None, agent, memory_ids)

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
    ) -> list[MemoryRow]:
        query: Doc = {"agent": agent}
        if kinds:
            query["kind"] = {"$in": sorted(int(k) for k in kinds)}
        if before is not None:
            query["$or"] = [
                {"create_time_us": {"$lt": before[0]}},
                {"create_time_us": before[0], "memory_id": {"$lt": before[1]}},
            ]
        cursor = self._db.memories.find(query).sort([("create_time_us", -1), ("memory_id", -1)])
        return [memory_of(d) for d in await cursor.limit(limit).to_list(None)]

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        return await self._txn(lambda s: writes.update(self._db, s, agent, memory_id, change))

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        return await self._txn(lambda s: writes.delete(self._db, s, agent, memory_id))

    async def load_index(self, agent: str) -> IndexSnapshot | None:
        for _ in range(5):
            head = await self._db.personas.find_one({"_id": agent})
            if head is None:
                return None
            fields = {"memory_id": 1, "kind": 1, "importance": 1, "trust": 1}
            cursor = self._db.memories.find(
                {"agent": agent}, {**fields, "create_time_us": 1, "vector": 1}
            )
            docs = await cursor.to_list(None)
            again = await self._db.personas.find_one({"_id": agent}, {"memory_revision": 1})
            if again is not None and again["memory_revision"] == head["memory_revision"]:
                return snapshot(head["memory_revision"], head["embedding_dimension"], docs)
        raise RevisionConflictError(agent)

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        return await self._txn(
            lambda s: writes.replace_memories(
                self._db, s, agent, expected_revision, delete_ids, insert
            )
        )

    async def set_vectors(
        self, agent: str, *, expected_revision: int, model: str, vectors: Mapping[str, Vector]
    ) -> int:
        return await self._txn(
            lambda s: writes.set_vectors(self._db, s, agent, expected_revision, model, vectors)
        )

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        doc = await self._db.requests.find_one({"agent": agent, "request_id": request_id})
        return None if doc is None else (doc["op"], doc["result"])

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        async def body(s: AsyncClientSession) -> None:
            await claim(self._db, s, agent, request_id, op, result)

        await self._txn(body)

    # relationships

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow | None:
        doc = await self._db.relationships.find_one({"_id": f"{agent}/{counterparty}"})
        return None if doc is None else relationship_row(agent, counterparty, doc)

    async def list_relationships(self, agent: str, after: str, limit: int) -> list[RelationshipRow]:
        cursor = self._db.relationships.find({"agent": agent, "counterparty": {"$gt": after}})
        docs = await cursor.sort("counterparty", ASCENDING).limit(limit).to_list(None)
        return [relationship_row(agent, d["counterparty"], d) for d in docs]

    async def mutate_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> tuple[RelationshipRow, bool]:
        key = f"{agent}/{counterparty}"

        async def body(s: AsyncClientSession) -> tuple[RelationshipRow, bool]:
            await persona_in(self._db, s, agent)
            found = await self._db.relationships.find_one({"_id": key}, session=s)
            current = (
                RelationshipRow(agent, counterparty)
                if found is None
                else relationship_row(agent, counterparty, found)
            )
            if not await claim(self._db, s, agent, request_id, op, ""):
                return current, False
            updated = change(current)
            doc = {"_id": key, "agent": agent, "counterparty": counterparty}
            doc.update(relationship_doc(updated))
            await self._db.relationships.replace_one({"_id": key}, doc, upsert=True, session=s)
            return updated, True

        return await self._txn(body)
