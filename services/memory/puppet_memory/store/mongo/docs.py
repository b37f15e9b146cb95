"""MongoDB documents and the session helpers every transaction uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from puppet_memory.store import (
    IndexSnapshot,
    MemoryRow,
    PersonaNotFoundError,
    PersonaRow,
    RevisionConflictError,
)
from puppet_memory.store.records import (
    MEMORY_FIELDS,
    index_snapshot,
    memory_row,
    memory_values,
    persona_row,
)
from puppet_memory.store.rules import check_request_op

Doc = dict[str, Any]
Db = AsyncDatabase[Doc]
COUNTERS = ("memory_count", "core_count", "memory_revision")
_INCREMENTS = (*COUNTERS, "state_rev")


def persona_of(doc: Doc) -> PersonaRow:
    return persona_row(doc["_id"], doc)


def memory_to_doc(m: MemoryRow) -> Doc:
    doc = dict(zip(MEMORY_FIELDS, memory_values(m), strict=True))
    return {"_id": f"{m.agent}/{m.memory_id}", **doc, "vector": Binary(doc["vector"])}


def memory_of(doc: Doc) -> MemoryRow:
    return memory_row([doc[k] for k in MEMORY_FIELDS])


def snapshot(revision: int, dim: int, docs: list[Doc]) -> IndexSnapshot:
    fields = ("memory_id", "kind", "importance", "trust", "create_time_us")
    return index_snapshot(
        revision, dim, [(*(d[f] for f in fields), bytes(d["vector"])) for d in docs]
    )


async def persona_in(db: Db, s: AsyncClientSession | None, agent: str) -> Doc:
    doc = await db.personas.find_one({"_id": agent}, session=s)
    if doc is None:
        raise PersonaNotFoundError(agent)
    return doc


async def claim(
    db: Db, s: AsyncClientSession, agent: str, request_id: str | None, op: str, result: str
) -> bool:
    """Record request_id for op; False if it was already recorded (a replay)."""
    if not request_id:
        return True
    found = await db.requests.find_one({"agent": agent, "request_id": request_id}, session=s)
    if found is not None:
        check_request_op(request_id, found["op"], op)
        return False
    await db.requests.insert_one(
        {"agent": agent, "request_id": request_id, "op": op, "result": result}, session=s
    )
    return True


async def bump(db: Db, s: AsyncClientSession, agent: str, revision: int, **changes: Any) -> int:
    """Compare-and-set on memory_revision, so concurrent replicas can't interleave; changes
    named in COUNTERS (or state_rev) are added, the others set."""
    inc = {k: changes.pop(k) for k in list(changes) if k in _INCREMENTS}
    done = await db.personas.update_one(
        {"_id": agent, "memory_revision": revision},
        {"$inc": {**inc, "memory_revision": 1}, **({"$set": changes} if changes else {})},
        session=s,
    )
    if done.matched_count != 1:
        raise RevisionConflictError(agent)
    return revision + 1


async def get_memories(
    db: Db, s: AsyncClientSession | None, agent: str, memory_ids: Sequence[str]
) -> list[MemoryRow]:
    if not memory_ids:
        return []
    found = db.memories.find({"agent": agent, "memory_id": {"$in": list(memory_ids)}}, session=s)
    return [memory_of(d) for d in await found.to_list(None)]
