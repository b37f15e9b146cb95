"""MongoDB adapter (production): AsyncMongoClient; multi-document writes in transactions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from bson import Binary
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from puppet_memory.store import (
    Admit,
    Channel,
    IndexSnapshot,
    Insert,
    Inserted,
    Kind,
    MemoryChange,
    MemoryRow,
    PersonaChange,
    PersonaExistsError,
    PersonaNotFoundError,
    PersonaRow,
    RelationshipChange,
    RelationshipRow,
    RevisionConflictError,
    Vector,
)
from puppet_memory.store.records import (
    persona_state,
    relationship_doc,
    relationship_row,
    vector_bytes,
    vector_of,
    with_state,
)
from puppet_memory.store.rules import check_embedding, check_request_op, new_keys, plan_inserts

T = TypeVar("T")
Doc = dict[str, Any]
_COUNTERS = ("memory_count", "core_count", "memory_revision")


def _persona(doc: Doc) -> PersonaRow:
    base = PersonaRow(
        agent=doc["_id"],
        create_time_us=doc["create_time_us"],
        memory_count=doc["memory_count"],
        core_count=doc["core_count"],
        embedding_model=doc["embedding_model"],
        embedding_dimension=doc["embedding_dimension"],
        memory_revision=doc["memory_revision"],
    )
    return with_state(base, doc["state"])


def _memory_doc(m: MemoryRow) -> Doc:
    return {
        "_id": f"{m.agent}/{m.memory_id}",
        "agent": m.agent,
        "memory_id": m.memory_id,
        "kind": int(m.kind),
        "content": m.content,
        "importance": m.importance,
        "valence": m.valence,
        "associations": list(m.associations),
        "metadata": dict(m.metadata),
        "source": m.source,
        "channel": int(m.channel),
        "trust": m.trust,
        "create_time_us": m.create_time_us,
        "update_time_us": m.update_time_us,
        "model": m.embedding_model,
        "vector": Binary(vector_bytes(m.vector)),
    }


def _memory(d: Doc) -> MemoryRow:
    return MemoryRow(
        agent=d["agent"],
        memory_id=d["memory_id"],
        kind=Kind(d["kind"]),
        content=d["content"],
        importance=d["importance"],
        valence=d["valence"],
        associations=tuple(d["associations"]),
        metadata=d["metadata"],
        source=d["source"],
        channel=Channel(d["channel"]),
        trust=d["trust"],
        create_time_us=d["create_time_us"],
        update_time_us=d["update_time_us"],
        embedding_model=d["model"],
        vector=vector_of(bytes(d["vector"])),
    )


class MongoStore:
    """Collections personas, memories, relationships, requests in one database."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=5000, tz_aware=False
        )
        self._db: AsyncDatabase[Doc] = self._client[database]

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

    async def _persona_in(self, s: AsyncClientSession | None, agent: str) -> Doc:
        doc = await self._db.personas.find_one({"_id": agent}, session=s)
        if doc is None:
            raise PersonaNotFoundError(agent)
        return doc

    async def _claim(
        self, s: AsyncClientSession, agent: str, request_id: str | None, op: str, result: str
    ) -> bool:
        if not request_id:
            return True
        found = await self._db.requests.find_one(
            {"agent": agent, "request_id": request_id}, session=s
        )
        if found is not None:
            check_request_op(request_id, found["op"], op)
            return False
        await self._db.requests.insert_one(
            {"agent": agent, "request_id": request_id, "op": op, "result": result}, session=s
        )
        return True

    async def _bump(self, s: AsyncClientSession, agent: str, revision: int, **changes: Any) -> int:
        """Compare-and-set on memory_revision, so concurrent replicas can't interleave."""
        inc = {k: changes.pop(k) for k in list(changes) if k in _COUNTERS}
        done = await self._db.personas.update_one(
            {"_id": agent, "memory_revision": revision},
            {"$inc": {**inc, "memory_revision": 1}, **({"$set": changes} if changes else {})},
            session=s,
        )
        if done.matched_count != 1:
            raise RevisionConflictError(agent)
        return revision + 1

    # personas

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        async def body(s: AsyncClientSession) -> PersonaRow:
            found = await self._db.personas.find_one({"_id": row.agent}, session=s)
            if found is not None:
                if request_id and found.get("create_request_id") == request_id:
                    return _persona(found)
                raise PersonaExistsError(row.agent)
            doc: Doc = {
                "_id": row.agent,
                "state": persona_state(row),
                "create_time_us": row.create_time_us,
                "create_request_id": request_id,
                "embedding_model": "",
                "embedding_dimension": 0,
                "state_rev": 0,
                **dict.fromkeys(_COUNTERS, 0),
            }
            await self._db.personas.insert_one(doc, session=s)
            return _persona(doc)

        return await self._txn(body)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        doc = await self._db.personas.find_one({"_id": agent})
        return None if doc is None else _persona(doc)

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]:
        cursor = self._db.personas.find({"_id": {"$gt": after}}).sort("_id", ASCENDING)
        return [_persona(d) for d in await cursor.limit(limit).to_list(None)]

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
            raw = await self._persona_in(s, agent)
            current = _persona(raw)
            if not await self._claim(s, agent, request_id, op, ""):
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
            return _persona(done), True

        return await self._txn(body)

    # memories

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        async def body(s: AsyncClientSession) -> Inserted:
            persona = _persona(await self._persona_in(s, agent))
            if admit is not None:
                admit(persona)
            keys = [i.request_id for i in inserts if i.request_id]
            known: dict[str, str] = {}
            if keys:
                found = self._db.requests.find(
                    {"agent": agent, "request_id": {"$in": keys}}, session=s
                )
                for doc in await found.to_list(None):
                    check_request_op(doc["request_id"], doc["op"], "create_memory")
                    known[doc["request_id"]] = doc["result"]
            existing = {m.memory_id: m for m in await self._get(s, agent, list(known.values()))}
            plan = plan_inserts(inserts, known, existing)
            new = [row for row, created in plan if created]
            if not new:
                return Inserted([r for r, _ in plan], [c for _, c in plan], 0, persona)
            model, dim = check_embedding(persona, new)
            cores = sum(1 for m in new if m.kind is Kind.CORE)
            await self._db.memories.insert_many([_memory_doc(m) for m in new], session=s)
            fresh = new_keys(agent, inserts, plan)
            if fresh:
                await self._db.requests.delete_many(
                    {"agent": agent, "request_id": {"$in": [k for _, k, _ in fresh]}}, session=s
                )
                await self._db.requests.insert_many(
                    [
                        {"agent": a, "request_id": k, "op": "create_memory", "result": m}
                        for a, k, m in fresh
                    ],
                    session=s,
                )
            revision = await self._bump(
                s,
                agent,
                persona.memory_revision,
                memory_count=len(new),
                core_count=cores,
                embedding_model=model,
                embedding_dimension=dim,
            )
            persona = replace(
                persona,
                memory_count=persona.memory_count + len(new),
                core_count=persona.core_count + cores,
                embedding_model=model,
                embedding_dimension=dim,
                memory_revision=revision,
            )
            return Inserted([r for r, _ in plan], [c for _, c in plan], revision, persona)

        return await self._txn(body)

    async def _get(
        self, s: AsyncClientSession | None, agent: str, memory_ids: Sequence[str]
    ) -> list[MemoryRow]:
        if not memory_ids:
            return []
        found = self._db.memories.find(
            {"agent": agent, "memory_id": {"$in": list(memory_ids)}}, session=s
        )
        return [_memory(d) for d in await found.to_list(None)]

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        return await self._get(None, agent, memory_ids)

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
        return [_memory(d) for d in await cursor.limit(limit).to_list(None)]

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        async def body(s: AsyncClientSession) -> tuple[MemoryRow, int] | None:
            persona = _persona(await self._persona_in(s, agent))
            found = await self._get(s, agent, [memory_id])
            if not found:
                return None
            before, after = found[0], change(found[0])
            fields = {k: v for k, v in _memory_doc(after).items() if k not in ("_id", "vector")}
            await self._db.memories.update_one(
                {"_id": f"{agent}/{memory_id}"}, {"$set": fields}, session=s
            )
            core_delta = int(after.kind is Kind.CORE) - int(before.kind is Kind.CORE)
            revision = await self._bump(s, agent, persona.memory_revision, core_count=core_delta)
            return after, revision

        return await self._txn(body)

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        async def body(s: AsyncClientSession) -> int | None:
            persona = _persona(await self._persona_in(s, agent))
            gone = await self._db.memories.find_one_and_delete(
                {"_id": f"{agent}/{memory_id}"}, session=s
            )
            if gone is None:
                return None
            core = int(gone["kind"] == Kind.CORE)
            return await self._bump(
                s, agent, persona.memory_revision, memory_count=-1, core_count=-core
            )

        return await self._txn(body)

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
                return _snapshot(head["memory_revision"], head["embedding_dimension"], docs)
        raise RevisionConflictError(agent)

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        async def body(s: AsyncClientSession) -> int:
            ids = [f"{agent}/{m}" for m in delete_ids]
            gone = self._db.memories.find({"_id": {"$in": ids}}, {"kind": 1}, session=s)
            kinds = [d["kind"] for d in await gone.to_list(None)]
            await self._db.memories.delete_many({"_id": {"$in": ids}}, session=s)
            if insert:
                await self._db.memories.insert_many([_memory_doc(m) for m in insert], session=s)
            cores = sum(1 for m in insert if m.kind is Kind.CORE) - kinds.count(int(Kind.CORE))
            return await self._bump(
                s,
                agent,
                expected_revision,
                memory_count=len(insert) - len(kinds),
                core_count=cores,
            )

        return await self._txn(body)

    async def set_vectors(
        self, agent: str, *, expected_revision: int, model: str, vectors: Mapping[str, Vector]
    ) -> int:
        dims = {int(v.shape[0]) for v in vectors.values()}

        async def body(s: AsyncClientSession) -> int:
            for memory_id, vector in vectors.items():
                await self._db.memories.update_one(
                    {"_id": f"{agent}/{memory_id}"},
                    {"$set": {"model": model, "vector": Binary(vector_bytes(vector))}},
                    session=s,
                )
            return await self._bump(
                s,
                agent,
                expected_revision,
                embedding_model=model if vectors else "",
                embedding_dimension=dims.pop() if dims else 0,
            )

        return await self._txn(body)

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        doc = await self._db.requests.find_one({"agent": agent, "request_id": request_id})
        return None if doc is None else (doc["op"], doc["result"])

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        async def body(s: AsyncClientSession) -> None:
            await self._claim(s, agent, request_id, op, result)

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
            await self._persona_in(s, agent)
            found = await self._db.relationships.find_one({"_id": key}, session=s)
            current = (
                RelationshipRow(agent, counterparty)
                if found is None
                else relationship_row(agent, counterparty, found)
            )
            if not await self._claim(s, agent, request_id, op, ""):
                return current, False
            updated = change(current)
            doc = {"_id": key, "agent": agent, "counterparty": counterparty}
            doc.update(relationship_doc(updated))
            await self._db.relationships.replace_one({"_id": key}, doc, upsert=True, session=s)
            return updated, True

        return await self._txn(body)


def _snapshot(revision: int, dim: int, docs: list[Doc]) -> IndexSnapshot:
    n = len(docs)
    blob = b"".join(bytes(d["vector"]) for d in docs)
    return IndexSnapshot(
        revision=revision,
        ids=[d["memory_id"] for d in docs],
        vectors=np.frombuffer(blob, dtype="<f4").reshape(n, dim).astype(np.float32),
        kinds=np.fromiter((d["kind"] for d in docs), dtype=np.int8, count=n),
        importance=np.fromiter((d["importance"] for d in docs), dtype=np.float32, count=n),
        trust=np.fromiter((d["trust"] for d in docs), dtype=np.float32, count=n),
        create_time_us=np.fromiter((d["create_time_us"] for d in docs), dtype=np.int64, count=n),
    )
