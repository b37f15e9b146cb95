"""SQLite transactions on memories: insert, list, update, delete, the index and bulk rewrites."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from puppet_memory.store import (
    Admit,
    IndexSnapshot,
    Insert,
    Inserted,
    Kind,
    MemoryChange,
    MemoryRow,
    PersonaNotFoundError,
    Vector,
)
from puppet_memory.store.records import index_snapshot, vector_bytes
from puppet_memory.store.rules import (
    check_embedding,
    known_results,
    new_keys,
    plan_inserts,
    post_time,
)
from puppet_memory.store.sqlite.rows import (
    INSERT_MEMORY,
    MEMORY_COLS,
    PERSONA_COLS,
    chunks,
    expect,
    get_memories,
    marks,
    memory_of,
    memory_params,
    one,
    persona_in,
    persona_of,
)


def insert(
    db: sqlite3.Connection, agent: str, inserts: Sequence[Insert], admit: Admit | None
) -> Inserted:
    if admit is not None:
        admit(persona_in(db, agent))
    keys = [i.request_id for i in inserts if i.request_id]
    known = known_results(
        row
        for chunk in chunks(keys)
        for row in db.execute(
            "SELECT request_id, op, result FROM requests WHERE agent = ? "
            f"AND request_id IN ({marks(len(chunk))})",
            (agent, *chunk),
        ).fetchall()
    )
    existing = {m.memory_id: m for m in get_memories(db, agent, list(known.values()))}
    plan = plan_inserts(inserts, known, existing)
    new = [row for row, created in plan if created]
    if not new:
        return Inserted([r for r, _ in plan], [False] * len(plan), 0, persona_in(db, agent))
    posted = post_time(inserts, plan)
    found = one(
        db,
        "UPDATE personas SET memory_count = memory_count + ?1, core_count = core_count + ?2,"
        " memory_revision = memory_revision + 1,"
        " embedding_model = CASE WHEN memory_count = 0 THEN ?3 ELSE embedding_model END,"
        " embedding_dimension = CASE WHEN memory_count = 0 THEN ?4 ELSE embedding_dimension END,"
        " state = CASE WHEN ?6 IS NULL THEN state"
        " ELSE json_set(state, '$.last_post_time_us', ?6, '$.update_time_us', ?7) END"
        f" WHERE agent = ?5 RETURNING {PERSONA_COLS}",
        len(new),
        sum(1 for m in new if m.kind is Kind.CORE),
        new[0].embedding_model,
        new[0].dimension,
        agent,
        None if posted is None else posted[0],
        None if posted is None else posted[1],
    )
    if found is None:
        raise PersonaNotFoundError(agent)
    persona = persona_of(found)
    check_embedding(replace(persona, memory_count=persona.memory_count - len(new)), new)
    db.executemany(INSERT_MEMORY, [memory_params(m) for m in new])
    fresh = new_keys(agent, inserts, plan)
    if fresh:
        db.executemany(
            "INSERT OR REPLACE INTO requests (agent, request_id, op, result) "
            "VALUES (?, ?, 'create_memory', ?)",
            fresh,
        )
    created = [c for _, c in plan]
    return Inserted([r for r, _ in plan], created, persona.memory_revision, persona)


def list_memories(
    db: sqlite3.Connection,
    agent: str,
    kinds: frozenset[Kind],
    before: tuple[int, str] | None,
    limit: int,
) -> list[MemoryRow]:
    sql = f"SELECT {MEMORY_COLS} FROM memories WHERE agent = ?"
    params: list[Any] = [agent]
    if kinds:
        sql += f" AND kind IN ({marks(len(kinds))})"
        params += sorted(int(k) for k in kinds)
    if before is not None:
        sql += " AND (create_time_us < ? OR (create_time_us = ? AND memory_id < ?))"
        params += [before[0], before[0], before[1]]
    sql += " ORDER BY create_time_us DESC, memory_id DESC LIMIT ?"
    return [memory_of(r) for r in db.execute(sql, (*params, limit)).fetchall()]


def update_memory(
    db: sqlite3.Connection, agent: str, memory_id: str, change: MemoryChange
) -> tuple[MemoryRow, int] | None:
    found = get_memories(db, agent, [memory_id])
    if not found:
        return None
    before, after = found[0], change(found[0])
    db.execute(INSERT_MEMORY, memory_params(after))
    core_delta = int(after.kind is Kind.CORE) - int(before.kind is Kind.CORE)
    row = one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " core_count = core_count + ? WHERE agent = ? RETURNING memory_revision",
        core_delta,
        agent,
    )
    return after, row[0]


def delete_memory(db: sqlite3.Connection, agent: str, memory_id: str) -> int | None:
    gone = one(
        db,
        "DELETE FROM memories WHERE agent = ? AND memory_id = ? RETURNING kind",
        agent,
        memory_id,
    )
    if gone is None:
        return None
    row = one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " memory_count = memory_count - 1, core_count = core_count - ?"
        " WHERE agent = ? RETURNING memory_revision",
        int(gone[0] == Kind.CORE),
        agent,
    )
    return int(row[0])


def load_index(db: sqlite3.Connection, agent: str) -> IndexSnapshot | None:
    db.execute("BEGIN")  # one read snapshot for the head and the rows
    try:
        head = one(
            db, "SELECT memory_revision, embedding_dimension FROM personas WHERE agent = ?", agent
        )
        rows = (
            []
            if head is None
            else db.execute(
                "SELECT memory_id, kind, importance, trust, create_time_us, vector"
                " FROM memories WHERE agent = ?",
                (agent,),
            ).fetchall()
        )
    finally:
        db.execute("COMMIT")
    if head is None:
        return None
    return index_snapshot(head[0], head[1], rows)


def replace_memories(
    db: sqlite3.Connection,
    agent: str,
    expected_revision: int,
    delete_ids: Sequence[str],
    insert: Sequence[MemoryRow],
) -> int:
    expect(db, agent, expected_revision)
    for chunk in chunks(delete_ids):
        db.execute(
            f"DELETE FROM memories WHERE agent = ? AND memory_id IN ({marks(len(chunk))})",
            (agent, *chunk),
        )
    db.executemany(INSERT_MEMORY, [memory_params(m) for m in insert])
    row = one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " memory_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1),"
        " core_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1 AND kind = ?2)"
        " WHERE agent = ?1 RETURNING memory_revision",
        agent,
        int(Kind.CORE),
    )
    return int(row[0])


def set_vectors(
    db: sqlite3.Connection,
    agent: str,
    expected_revision: int,
    model: str,
    vectors: Mapping[str, Vector],
) -> int:
    dims = {int(v.shape[0]) for v in vectors.values()}
    expect(db, agent, expected_revision)
    db.executemany(
        "UPDATE memories SET model = ?, vector = ? WHERE agent = ? AND memory_id = ?",
        [(model, vector_bytes(v), agent, mid) for mid, v in vectors.items()],
    )
    row = one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1, embedding_model = ?,"
        " embedding_dimension = ? WHERE agent = ? RETURNING memory_revision",
        model if vectors else "",
        dims.pop() if dims else 0,
        agent,
    )
    return int(row[0])
