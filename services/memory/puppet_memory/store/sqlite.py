"""SQLite adapter (the embedded default): WAL, one thread per connection, float32 BLOBs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from puppet_runtime.sqlite import ThreadedConnection, transaction

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS personas (
  agent TEXT PRIMARY KEY, state TEXT NOT NULL, create_time_us INTEGER NOT NULL,
  create_request_id TEXT, memory_count INTEGER NOT NULL DEFAULT 0,
  core_count INTEGER NOT NULL DEFAULT 0, embedding_model TEXT NOT NULL DEFAULT '',
  embedding_dimension INTEGER NOT NULL DEFAULT 0, memory_revision INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS memories (
  agent TEXT NOT NULL, memory_id TEXT NOT NULL, kind INTEGER NOT NULL, content TEXT NOT NULL,
  importance REAL NOT NULL, valence REAL NOT NULL, associations TEXT NOT NULL,
  metadata TEXT NOT NULL, source TEXT NOT NULL, channel INTEGER NOT NULL, trust REAL NOT NULL,
  create_time_us INTEGER NOT NULL, update_time_us INTEGER NOT NULL, model TEXT NOT NULL,
  vector BLOB NOT NULL, PRIMARY KEY (agent, memory_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memories_by_time ON memories (agent, create_time_us, memory_id);
CREATE TABLE IF NOT EXISTS relationships (
  agent TEXT NOT NULL, counterparty TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (agent, counterparty)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests (
  agent TEXT NOT NULL, request_id TEXT NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL,
  PRIMARY KEY (agent, request_id)
) WITHOUT ROWID;
"""
_PERSONA_COLS = (
    "agent, state, create_time_us, memory_count, core_count, embedding_model, "
    "embedding_dimension, memory_revision"
)
_MEMORY_COLS = (
    "agent, memory_id, kind, content, importance, valence, associations, metadata, source, "
    "channel, trust, create_time_us, update_time_us, model, vector"
)
_INSERT_MEMORY = f"INSERT OR REPLACE INTO memories ({_MEMORY_COLS}) VALUES ({', '.join('?' * 15)})"
_CHUNK = 500
_READER_MMAP = 1 << 30


def _persona(r: Sequence[Any]) -> PersonaRow:
    base = PersonaRow(
        agent=r[0],
        create_time_us=r[2],
        memory_count=r[3],
        core_count=r[4],
        embedding_model=r[5],
        embedding_dimension=r[6],
        memory_revision=r[7],
    )
    return with_state(base, json.loads(r[1]))


def _memory(r: Sequence[Any]) -> MemoryRow:
    return MemoryRow(
        agent=r[0],
        memory_id=r[1],
        kind=Kind(r[2]),
        content=r[3],
        importance=r[4],
        valence=r[5],
        associations=tuple(json.loads(r[6])),
        metadata=json.loads(r[7]),
        source=r[8],
        channel=Channel(r[9]),
        trust=r[10],
        create_time_us=r[11],
        update_time_us=r[12],
        embedding_model=r[13],
        vector=vector_of(r[14]),
    )


def _memory_params(m: MemoryRow) -> tuple[Any, ...]:
    return (
        m.agent,
        m.memory_id,
        int(m.kind),
        m.content,
        m.importance,
        m.valence,
        json.dumps(list(m.associations)),
        json.dumps(dict(m.metadata)),
        m.source,
        int(m.channel),
        m.trust,
        m.create_time_us,
        m.update_time_us,
        m.embedding_model,
        vector_bytes(m.vector),
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _one(db: sqlite3.Connection, sql: str, *params: Any) -> Any:
    # fetchall, not fetchone: a half-stepped UPDATE ... RETURNING would block the COMMIT.
    rows = db.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _persona_or_none(db: sqlite3.Connection, agent: str) -> PersonaRow | None:
    row = _one(db, f"SELECT {_PERSONA_COLS} FROM personas WHERE agent = ?", agent)
    return None if row is None else _persona(row)


def _persona_in(db: sqlite3.Connection, agent: str) -> PersonaRow:
    found = _persona_or_none(db, agent)
    if found is None:
        raise PersonaNotFoundError(agent)
    return found


def _claim(
    db: sqlite3.Connection, agent: str, request_id: str | None, op: str, result: str
) -> bool:
    """Record request_id for op; False if it was already recorded (a replay)."""
    if not request_id:
        return True
    found = _one(
        db, "SELECT op FROM requests WHERE agent = ? AND request_id = ?", agent, request_id
    )
    if found is not None:
        check_request_op(request_id, found[0], op)
        return False
    db.execute(
        "INSERT INTO requests (agent, request_id, op, result) VALUES (?, ?, ?, ?)",
        (agent, request_id, op, result),
    )
    return True


def _get_memories(db: sqlite3.Connection, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
    out: list[MemoryRow] = []
    for chunk in _chunks(memory_ids):
        rows = db.execute(
            f"SELECT {_MEMORY_COLS} FROM memories WHERE agent = ? "
            f"AND memory_id IN ({_marks(len(chunk))})",
            (agent, *chunk),
        ).fetchall()
        out.extend(_memory(r) for r in rows)
    return out


# personas


def _create_persona(db: sqlite3.Connection, row: PersonaRow, request_id: str | None) -> PersonaRow:
    found = _one(db, "SELECT create_request_id FROM personas WHERE agent = ?", row.agent)
    if found is not None:
        if request_id and found[0] == request_id:
            return _persona_in(db, row.agent)
        raise PersonaExistsError(row.agent)
    db.execute(
        "INSERT INTO personas (agent, state, create_time_us, create_request_id) "
        "VALUES (?, ?, ?, ?)",
        (row.agent, json.dumps(persona_state(row)), row.create_time_us, request_id),
    )
    return _persona_in(db, row.agent)


def _list_personas(db: sqlite3.Connection, after: str, limit: int) -> list[PersonaRow]:
    rows = db.execute(
        f"SELECT {_PERSONA_COLS} FROM personas WHERE agent > ? ORDER BY agent LIMIT ?",
        (after, limit),
    ).fetchall()
    return [_persona(r) for r in rows]


def _delete_persona(db: sqlite3.Connection, agent: str) -> bool:
    if db.execute("DELETE FROM personas WHERE agent = ?", (agent,)).rowcount == 0:
        return False
    for table in ("memories", "relationships", "requests"):
        db.execute(f"DELETE FROM {table} WHERE agent = ?", (agent,))
    return True


def _mutate_persona(
    db: sqlite3.Connection, agent: str, change: PersonaChange, op: str, request_id: str | None
) -> tuple[PersonaRow, bool]:
    current = _persona_in(db, agent)
    if not _claim(db, agent, request_id, op, ""):
        return current, False
    state = persona_state(change(current))
    db.execute("UPDATE personas SET state = ? WHERE agent = ?", (json.dumps(state), agent))
    return with_state(current, state), True


# memories


def _insert(
    db: sqlite3.Connection, agent: str, inserts: Sequence[Insert], admit: Admit | None
) -> Inserted:
    if admit is not None:
        admit(_persona_in(db, agent))
    keys = [i.request_id for i in inserts if i.request_id]
    known: dict[str, str] = {}
    for chunk in _chunks(keys):
        found = db.execute(
            "SELECT request_id, op, result FROM requests WHERE agent = ? "
            f"AND request_id IN ({_marks(len(chunk))})",
            (agent, *chunk),
        ).fetchall()
        for request_id, op, result in found:
            check_request_op(request_id, op, "create_memory")
            known[request_id] = result
    existing = {m.memory_id: m for m in _get_memories(db, agent, list(known.values()))}
    plan = plan_inserts(inserts, known, existing)
    new = [row for row, created in plan if created]
    if not new:
        return Inserted([r for r, _ in plan], [False] * len(plan), 0, _persona_in(db, agent))
    found = _one(
        db,
        "UPDATE personas SET memory_count = memory_count + ?1, core_count = core_count + ?2,"
        " memory_revision = memory_revision + 1,"
        " embedding_model = CASE WHEN memory_count = 0 THEN ?3 ELSE embedding_model END,"
        " embedding_dimension = CASE WHEN memory_count = 0 THEN ?4 ELSE embedding_dimension"
        f" END WHERE agent = ?5 RETURNING {_PERSONA_COLS}",
        len(new),
        sum(1 for m in new if m.kind is Kind.CORE),
        new[0].embedding_model,
        new[0].dimension,
        agent,
    )
    if found is None:
        raise PersonaNotFoundError(agent)
    persona = _persona(found)
    check_embedding(replace(persona, memory_count=persona.memory_count - len(new)), new)
    db.executemany(_INSERT_MEMORY, [_memory_params(m) for m in new])
    fresh = new_keys(agent, inserts, plan)
    if fresh:
        db.executemany(
            "INSERT OR REPLACE INTO requests (agent, request_id, op, result) "
            "VALUES (?, ?, 'create_memory', ?)",
            fresh,
        )
    created = [c for _, c in plan]
    return Inserted([r for r, _ in plan], created, persona.memory_revision, persona)


def _list_memories(
    db: sqlite3.Connection,
    agent: str,
    kinds: frozenset[Kind],
    before: tuple[int, str] | None,
    limit: int,
) -> list[MemoryRow]:
    sql = f"SELECT {_MEMORY_COLS} FROM memories WHERE agent = ?"
    params: list[Any] = [agent]
    if kinds:
        sql += f" AND kind IN ({_marks(len(kinds))})"
        params += sorted(int(k) for k in kinds)
    if before is not None:
        sql += " AND (create_time_us < ? OR (create_time_us = ? AND memory_id < ?))"
        params += [before[0], before[0], before[1]]
    sql += " ORDER BY create_time_us DESC, memory_id DESC LIMIT ?"
    return [_memory(r) for r in db.execute(sql, (*params, limit)).fetchall()]


def _update_memory(
    db: sqlite3.Connection, agent: str, memory_id: str, change: MemoryChange
) -> tuple[MemoryRow, int] | None:
    found = _get_memories(db, agent, [memory_id])
    if not found:
        return None
    before, after = found[0], change(found[0])
    db.execute(_INSERT_MEMORY, _memory_params(after))
    core_delta = int(after.kind is Kind.CORE) - int(before.kind is Kind.CORE)
    row = _one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " core_count = core_count + ? WHERE agent = ? RETURNING memory_revision",
        core_delta,
        agent,
    )
    return after, row[0]


def _delete_memory(db: sqlite3.Connection, agent: str, memory_id: str) -> int | None:
    gone = _one(
        db,
        "DELETE FROM memories WHERE agent = ? AND memory_id = ? RETURNING kind",
        agent,
        memory_id,
    )
    if gone is None:
        return None
    row = _one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " memory_count = memory_count - 1, core_count = core_count - ?"
        " WHERE agent = ? RETURNING memory_revision",
        int(gone[0] == Kind.CORE),
        agent,
    )
    return int(row[0])


def _load_index(db: sqlite3.Connection, agent: str) -> IndexSnapshot | None:
    db.execute("BEGIN")  # one read snapshot for the head and the rows
    try:
        head = _one(
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
    blob = b"".join(r[5] for r in rows)
    return IndexSnapshot(
        revision=head[0],
        ids=[r[0] for r in rows],
        vectors=np.frombuffer(blob, dtype="<f4").reshape(len(rows), head[1]).astype(np.float32),
        kinds=np.fromiter((r[1] for r in rows), dtype=np.int8, count=len(rows)),
        importance=np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows)),
        trust=np.fromiter((r[3] for r in rows), dtype=np.float32, count=len(rows)),
        create_time_us=np.fromiter((r[4] for r in rows), dtype=np.int64, count=len(rows)),
    )


def _expect(db: sqlite3.Connection, agent: str, revision: int) -> None:
    if _persona_in(db, agent).memory_revision != revision:
        raise RevisionConflictError(agent)


def _replace_memories(
    db: sqlite3.Connection,
    agent: str,
    expected_revision: int,
    delete_ids: Sequence[str],
    insert: Sequence[MemoryRow],
) -> int:
    _expect(db, agent, expected_revision)
    for chunk in _chunks(delete_ids):
        db.execute(
            f"DELETE FROM memories WHERE agent = ? AND memory_id IN ({_marks(len(chunk))})",
            (agent, *chunk),
        )
    db.executemany(_INSERT_MEMORY, [_memory_params(m) for m in insert])
    row = _one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1,"
        " memory_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1),"
        " core_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1 AND kind = ?2)"
        " WHERE agent = ?1 RETURNING memory_revision",
        agent,
        int(Kind.CORE),
    )
    return int(row[0])


def _set_vectors(
    db: sqlite3.Connection,
    agent: str,
    expected_revision: int,
    model: str,
    vectors: Mapping[str, Vector],
) -> int:
    dims = {int(v.shape[0]) for v in vectors.values()}
    _expect(db, agent, expected_revision)
    db.executemany(
        "UPDATE memories SET model = ?, vector = ? WHERE agent = ? AND memory_id = ?",
        [(model, vector_bytes(v), agent, mid) for mid, v in vectors.items()],
    )
    row = _one(
        db,
        "UPDATE personas SET memory_revision = memory_revision + 1, embedding_model = ?,"
        " embedding_dimension = ? WHERE agent = ? RETURNING memory_revision",
        model if vectors else "",
        dims.pop() if dims else 0,
        agent,
    )
    return int(row[0])


def _record_request(
    db: sqlite3.Connection, agent: str, request_id: str, op: str, result: str
) -> None:
    _claim(db, agent, request_id, op, result)


# relationships


def _relationship(db: sqlite3.Connection, agent: str, counterparty: str) -> RelationshipRow | None:
    row = _one(
        db,
        "SELECT doc FROM relationships WHERE agent = ? AND counterparty = ?",
        agent,
        counterparty,
    )
    return None if row is None else relationship_row(agent, counterparty, json.loads(row[0]))


def _list_relationships(
    db: sqlite3.Connection, agent: str, after: str, limit: int
) -> list[RelationshipRow]:
    rows = db.execute(
        "SELECT counterparty, doc FROM relationships WHERE agent = ? AND counterparty > ?"
        " ORDER BY counterparty LIMIT ?",
        (agent, after, limit),
    ).fetchall()
    return [relationship_row(agent, r[0], json.loads(r[1])) for r in rows]


def _mutate_relationship(
    db: sqlite3.Connection,
    agent: str,
    counterparty: str,
    change: RelationshipChange,
    op: str,
    request_id: str | None,
) -> tuple[RelationshipRow, bool]:
    _persona_in(db, agent)
    current = _relationship(db, agent, counterparty) or RelationshipRow(agent, counterparty)
    if not _claim(db, agent, request_id, op, ""):
        return current, False
    updated = change(current)
    db.execute(
        "INSERT OR REPLACE INTO relationships (agent, counterparty, doc) VALUES (?, ?, ?)",
        (agent, counterparty, json.dumps(relationship_doc(updated))),
    )
    return updated, True


class SqliteStore:
    """One file; a writer and a reader connection (WAL lets both run), each on its own thread.

    Every call is one function run on its connection's thread: a write is one transaction in
    one hop, and the writer's single thread serialises the writes.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer = ThreadedConnection("sqlite-writer")
        self._reader = ThreadedConnection("sqlite-reader")

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open(
            self._path,
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=5000",
        )
        await self._writer.run(lambda db: db.executescript(_SCHEMA))
        # Recall fetches a few random rows of a file far bigger than SQLite's page cache: reading
        # them through a memory map saves a read() and a copy per page.
        await self._reader.open(
            self._path, "PRAGMA busy_timeout=5000", f"PRAGMA mmap_size={_READER_MMAP}"
        )

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    # personas

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        return await self._writer.run(transaction, _create_persona, row, request_id)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        return await self._reader.run(_persona_or_none, agent)

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]:
        return await self._reader.run(_list_personas, after, limit)

    async def delete_persona(self, agent: str) -> bool:
        return await self._writer.run(transaction, _delete_persona, agent)

    async def mutate_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> tuple[PersonaRow, bool]:
        return await self._writer.run(transaction, _mutate_persona, agent, change, op, request_id)

    # memories

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        return await self._writer.run(transaction, _insert, agent, inserts, admit)

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        return await self._reader.run(_get_memories, agent, memory_ids)

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
    ) -> list[MemoryRow]:
        return await self._reader.run(_list_memories, agent, kinds, before, limit)

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        return await self._writer.run(transaction, _update_memory, agent, memory_id, change)

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        return await self._writer.run(transaction, _delete_memory, agent, memory_id)

    async def load_index(self, agent: str) -> IndexSnapshot | None:
        return await self._reader.run(_load_index, agent)

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        return await self._writer.run(
            transaction, _replace_memories, agent, expected_revision, delete_ids, insert
        )

    async def set_vectors(
        self, agent: str, *, expected_revision: int, model: str, vectors: Mapping[str, Vector]
    ) -> int:
        return await self._writer.run(
            transaction, _set_vectors, agent, expected_revision, model, vectors
        )

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        row = await self._reader.run(
            _one,
            "SELECT op, result FROM requests WHERE agent = ? AND request_id = ?",
            agent,
            request_id,
        )
        return None if row is None else (row[0], row[1])

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        await self._writer.run(transaction, _record_request, agent, request_id, op, result)

    # relationships

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow | None:
        return await self._reader.run(_relationship, agent, counterparty)

    async def list_relationships(self, agent: str, after: str, limit: int) -> list[RelationshipRow]:
        return await self._reader.run(_list_relationships, agent, after, limit)

    async def mutate_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> tuple[RelationshipRow, bool]:
        return await self._writer.run(
            transaction, _mutate_relationship, agent, counterparty, change, op, request_id
        )
