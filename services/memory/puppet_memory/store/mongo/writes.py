"""MongoDB transaction bodies that write memories; each bumps the persona's revision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession

from puppet_memory.store import Admit, Insert, Inserted, Kind, MemoryChange, MemoryRow, Vector
from puppet_memory.store.mongo.docs import (
    Db,
    bump,
    get_memories,
    memory_to_doc,
    persona_in,
    persona_of,
)
from puppet_memory.store.records import vector_bytes
from puppet_memory.store.rules import (
    check_embedding,
    known_results,
    new_keys,
    plan_inserts,
    post_time,
)


async def insert(
    db: Db, s: AsyncClientSession, agent: str, inserts: Sequence[Insert], admit: Admit | None
) -> Inserted:
    persona = persona_of(await persona_in(db, s, agent))
    if admit is not None:
        admit(persona)
    keys = [i.request_id for i in inserts if i.request_id]
    known: dict[str, str] = {}
    if keys:
        found = db.requests.find({"agent": agent, "request_id": {"$in": keys}}, session=s)
        known = known_results(
            (d["request_id"], d["op"], d["result"]) for d in await found.to_list(None)
        )
    existing = {m.memory_id: m for m in await get_memories(db, s, agent, list(known.values()))}
    plan = plan_inserts(inserts, known, existing)
    new = [row for row, created in plan if created]
    if not new:
        return Inserted([r for r, _ in plan], [c for _, c in plan], 0, persona)
    model, dim = check_embedding(persona, new)
    cores = sum(1 for m in new if m.kind is Kind.CORE)
    await db.memories.insert_many([memory_to_doc(m) for m in new], session=s)
    fresh = new_keys(agent, inserts, plan)
    if fresh:
        await db.requests.delete_many(
            {"agent": agent, "request_id": {"$in": [k for _, k, _ in fresh]}}, session=s
        )
        await db.requests.insert_many(
            [
                {"agent": a, "request_id": k, "op": "create_memory", "result": m}
                for a, k, m in fresh
            ],
            session=s,
        )
    posted = post_time(inserts, plan)
    # A post's time changes the caller-owned state: state_rev moves too, so a state update that
    # read the persona before this insert cannot write the old time back (see mutate_persona).
    stamp = (
        {}
        if posted is None
        else {
            "state.last_post_time_us": posted[0],
            "state.update_time_us": posted[1],
            "state_rev": 1,
        }
    )
    revision = await bump(
        db,
        s,
        agent,
        persona.memory_revision,
        memory_count=len(new),
        core_count=cores,
        embedding_model=model,
        embedding_dimension=dim,
        **stamp,
    )
    persona = replace(
        persona,
        memory_count=persona.memory_count + len(new),
        core_count=persona.core_count + cores,
        embedding_model=model,
        embedding_dimension=dim,
        memory_revision=revision,
    )
    if posted is not None:
        persona = replace(persona, last_post_time_us=posted[0], update_time_us=posted[1])
    return Inserted([r for r, _ in plan], [c for _, c in plan], revision, persona)


async def update(
    db: Db, s: AsyncClientSession, agent: str, memory_id: str, change: MemoryChange
) -> tuple[MemoryRow, int] | None:
    persona = persona_of(await persona_in(db, s, agent))
    found = await get_memories(db, s, agent, [memory_id])
    if not found:
        return None
    before, after = found[0], change(found[0])
    fields = {k: v for k, v in memory_to_doc(after).items() if k not in ("_id", "vector")}
    await db.memories.update_one({"_id": f"{agent}/{memory_id}"}, {"$set": fields}, session=s)
    core_delta = int(after.kind is Kind.CORE) - int(before.kind is Kind.CORE)
    revision = await bump(db, s, agent, persona.memory_revision, core_count=core_delta)
    return after, revision


async def delete(db: Db, s: AsyncClientSession, agent: str, memory_id: str) -> int | None:
    persona = persona_of(await persona_in(db, s, agent))
    gone = await db.memories.find_one_and_delete({"_id": f"{agent}/{memory_id}"}, session=s)
    if gone is None:
        return None
    core = int(gone["kind"] == Kind.CORE)
    return await bump(db, s, agent, persona.memory_revision, memory_count=-1, core_count=-core)


async def replace_memories(
    db: Db,
    s: AsyncClientSession,
    agent: str,
    expected_revision: int,
    delete_ids: Sequence[str],
    insert: Sequence[MemoryRow],
) -> int:
    ids = [f"{agent}/{m}" for m in delete_ids]
    gone = db.memories.find({"_id": {"$in": ids}}, {"kind": 1}, session=s)
    kinds = [d["kind"] for d in await gone.to_list(None)]
    await db.memories.delete_many({"_id": {"$in": ids}}, session=s)
    if insert:
        await db.memories.insert_many([memory_to_doc(m) for m in insert], session=s)
    cores = sum(1 for m in insert if m.kind is Kind.CORE) - kinds.count(int(Kind.CORE))
    return await bump(
        db,
        s,
        agent,
        expected_revision,
        memory_count=len(insert) - len(kinds),
        core_count=cores,
    )


async def set_vectors(
    db: Db,
    s: AsyncClientSession,
    agent: str,
    expected_revision: int,
    model: str,
    vectors: Mapping[str, Vector],
) -> int:
    dims = {int(v.shape[0]) for v in vectors.values()}
    for memory_id, vector in vectors.items():
        await db.memories.update_one(
            {"_id": f"{agent}/{memory_id}"},
            {"$set": {"model": model, "vector": Binary(vector_bytes(vector))}},
            session=s,
        )
    return await bump(
        db,
        s,
        agent,
        expected_revision,
        embedding_model=model if vectors else "",
        embedding_dimension=dims.pop() if dims else 0,
    )
