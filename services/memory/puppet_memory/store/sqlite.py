"""SQLite adapter (the embedded default): aiosqlite, WAL, vectors as float32 BLOBs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np

from puppet_memory.store import (
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


class SqliteStore:
    """One file; a locked writer connection and a separate reader (WAL lets both run)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._snapshot_lock = asyncio.Lock()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # IMMEDIATE: the first write statement opens a write transaction (no extra BEGIN trip).
        writer = await aiosqlite.connect(self._path, isolation_level="IMMEDIATE")
        await writer.execute("PRAGMA journal_mode=WAL")
        await writer.execute("PRAGMA synchronous=NORMAL")
        await writer.execute("PRAGMA busy_timeout=5000")
        await writer.executescript(_SCHEMA)
        reader = await aiosqlite.connect(self._path, isolation_level=None)
        await reader.execute("PRAGMA busy_timeout=5000")
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("SqliteStore is not open")
        return self._reader

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("SqliteStore is not open")
        return self._writer

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        db = self._w
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    async def _one(self, db: aiosqlite.Connection, sql: str, *params: Any) -> Any:
        rows = list(await db.execute_fetchall(sql, params))
        return rows[0] if rows else None

    async def _persona_in(self, db: aiosqlite.Connection, agent: str) -> PersonaRow:
        row = await self._one(db, f"SELECT {_PERSONA_COLS} FROM personas WHERE agent = ?", agent)
        if row is None:
            raise PersonaNotFoundError(agent)
        return _persona(row)

    async def _claim(
        self, db: aiosqlite.Connection, agent: str, request_id: str | None, op: str, result: str
    ) -> bool:
        """Record request_id for op; False if it was already recorded (a replay)."""
        if not request_id:
            return True
        found = await self._one(
            db, "SELECT op FROM requests WHERE agent = ? AND request_id = ?", agent, request_id
        )
        if found is not None:
            check_request_op(request_id, found[0], op)
            return False
        await db.execute(
            "INSERT INTO requests (agent, request_id, op, result) VALUES (?, ?, ?, ?)",
            (agent, request_id, op, result),
        )
        return True

    # personas

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        async with self._tx() as db:
            found = await self._one(
                db, "SELECT create_request_id FROM personas WHERE agent = ?", row.agent
            )
            if found is not None:
                if request_id and found[0] == request_id:
                    return await self._persona_in(db, row.agent)
                raise PersonaExistsError(row.agent)
            await db.execute(
                "INSERT INTO personas (agent, state, create_time_us, create_request_id) "
                "VALUES (?, ?, ?, ?)",
                (row.agent, json.dumps(persona_state(row)), row.create_time_us, request_id),
            )
            return await self._persona_in(db, row.agent)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        row = await self._one(
            self._r, f"SELECT {_PERSONA_COLS} FROM personas WHERE agent = ?", agent
        )
        return None if row is None else _persona(row)

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]:
        rows = await self._r.execute_fetchall(
            f"SELECT {_PERSONA_COLS} FROM personas WHERE agent > ? ORDER BY agent LIMIT ?",
            (after, limit),
        )
        return [_persona(r) for r in rows]

    async def delete_persona(self, agent: str) -> bool:
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM personas WHERE agent = ?", (agent,))
            if cursor.rowcount == 0:
                return False
            for table in ("memories", "relationships", "requests"):
                await db.execute(f"DELETE FROM {table} WHERE agent = ?", (agent,))
            return True

    async def mutate_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> tuple[PersonaRow, bool]:
        async with self._tx() as db:
            current = await self._persona_in(db, agent)
            if not await self._claim(db, agent, request_id, op, ""):
                return current, False
            updated = change(current)
            await db.execute(
                "UPDATE personas SET state = ? WHERE agent = ?",
                (json.dumps(persona_state(updated)), agent),
            )
            return with_state(current, persona_state(updated)), True

    # memories

    async def insert_memories(self, agent: str, inserts: Sequence[Insert]) -> Inserted:
        # The hot write path: three round trips to the writer thread when no request_id is
        # given (UPDATE ... RETURNING opens the transaction implicitly, INSERT, COMMIT).
        db = self._w
        async with self._lock:
            try:
                return await self._insert(db, agent, inserts)
            except BaseException:
                if db.in_transaction:
                    await db.rollback()
                raise

    async def _insert(
        self, db: aiosqlite.Connection, agent: str, inserts: Sequence[Insert]
    ) -> Inserted:
        keys = [i.request_id for i in inserts if i.request_id]
        known: dict[str, str] = {}
        for chunk in _chunks(keys):
            found = await db.execute_fetchall(
                "SELECT request_id, op, result FROM requests WHERE agent = ? "
                f"AND request_id IN ({_marks(len(chunk))})",
                (agent, *chunk),
            )
            for request_id, op, result in found:
                check_request_op(request_id, op, "create_memory")
                known[request_id] = result
        existing = {
            m.memory_id: m for m in await self._get_memories(db, agent, list(known.values()))
        }
        plan = plan_inserts(inserts, known, existing)
        new = [row for row, created in plan if created]
        if not new:
            persona = await self._one(
                db, f"SELECT {_PERSONA_COLS} FROM personas WHERE agent = ?", agent
            )
            if persona is None:
                raise PersonaNotFoundError(agent)
            return Inserted([r for r, _ in plan], [False] * len(plan), 0, _persona(persona))
        cores = sum(1 for m in new if m.kind is Kind.CORE)
        found = await self._one(
            db,
            "UPDATE personas SET memory_count = memory_count + ?1, core_count = core_count + ?2,"
            " memory_revision = memory_revision + 1,"
            " embedding_model = CASE WHEN memory_count = 0 THEN ?3 ELSE embedding_model END,"
            " embedding_dimension = CASE WHEN memory_count = 0 THEN ?4 ELSE embedding_dimension"
            f" END WHERE agent = ?5 RETURNING {_PERSONA_COLS}",
            len(new),
            cores,
            new[0].embedding_model,
            new[0].dimension,
            agent,
        )
        if found is None:
            raise PersonaNotFoundError(agent)
        persona = _persona(found)
        before = replace(persona, memory_count=persona.memory_count - len(new))
        check_embedding(before, new)
        await db.executemany(_INSERT_MEMORY, [_memory_params(m) for m in new])
        fresh = new_keys(agent, inserts, plan)
        if fresh:
            await db.executemany(
                "INSERT OR REPLACE INTO requests (agent, request_id, op, result) "
                "VALUES (?, ?, 'create_memory', ?)",
                fresh,
            )
        await db.commit()
        created = [c for _, c in plan]
        return Inserted([r for r, _ in plan], created, persona.memory_revision, persona)

    async def _get_memories(
        self, db: aiosqlite.Connection, agent: str, memory_ids: Sequence[str]
    ) -> list[MemoryRow]:
        out: list[MemoryRow] = []
        for chunk in _chunks(memory_ids):
            rows = await db.execute_fetchall(
                f"SELECT {_MEMORY_COLS} FROM memories WHERE agent = ? "
                f"AND memory_id IN ({_marks(len(chunk))})",
                (agent, *chunk),
            )
            out.extend(_memory(r) for r in rows)
        return out

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        return await self._get_memories(self._r, agent, memory_ids)

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
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
        rows = await self._r.execute_fetchall(sql, (*params, limit))
        return [_memory(r) for r in rows]

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        async with self._tx() as db:
            found = await self._get_memories(db, agent, [memory_id])
            if not found:
                return None
            before, after = found[0], change(found[0])
            await db.execute(_INSERT_MEMORY, _memory_params(after))
            core_delta = int(after.kind is Kind.CORE) - int(before.kind is Kind.CORE)
            row = await self._one(
                db,
                "UPDATE personas SET memory_revision = memory_revision + 1,"
                " core_count = core_count + ? WHERE agent = ? RETURNING memory_revision",
                core_delta,
                agent,
            )
            return after, row[0]

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        async with self._tx() as db:
            gone = await self._one(
                db,
                "DELETE FROM memories WHERE agent = ? AND memory_id = ? RETURNING kind",
                agent,
                memory_id,
            )
            if gone is None:
                return None
            row = await self._one(
                db,
                "UPDATE personas SET memory_revision = memory_revision + 1,"
                " memory_count = memory_count - 1, core_count = core_count - ?"
                " WHERE agent = ? RETURNING memory_revision",
                int(gone[0] == Kind.CORE),
                agent,
            )
            return int(row[0])

    async def load_index(self, agent: str) -> IndexSnapshot | None:
        db = self._r
        async with self._snapshot_lock:
            await db.execute("BEGIN")
            try:
                head = await self._one(
                    db,
                    "SELECT memory_revision, embedding_dimension FROM personas WHERE agent = ?",
                    agent,
                )
                rows = (
                    []
                    if head is None
                    else list(
                        await db.execute_fetchall(
                            "SELECT memory_id, kind, importance, trust, create_time_us, vector"
                            " FROM memories WHERE agent = ?",
                            (agent,),
                        )
                    )
                )
            finally:
                await db.execute("COMMIT")
        if head is None:
            return None
        dim = head[1]
        blob = b"".join(r[5] for r in rows)
        return IndexSnapshot(
            revision=head[0],
            ids=[r[0] for r in rows],
            vectors=np.frombuffer(blob, dtype="<f4").reshape(len(rows), dim).astype(np.float32),
            kinds=np.fromiter((r[1] for r in rows), dtype=np.int8, count=len(rows)),
            importance=np.fromiter((r[2] for r in rows), dtype=np.float32, count=len(rows)),
            trust=np.fromiter((r[3] for r in rows), dtype=np.float32, count=len(rows)),
            create_time_us=np.fromiter((r[4] for r in rows), dtype=np.int64, count=len(rows)),
        )

    async def _expect(self, db: aiosqlite.Connection, agent: str, revision: int) -> None:
        persona = await self._persona_in(db, agent)
        if persona.memory_revision != revision:
            raise RevisionConflictError(agent)

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        async with self._tx() as db:
            await self._expect(db, agent, expected_revision)
            for chunk in _chunks(delete_ids):
                await db.execute(
                    f"DELETE FROM memories WHERE agent = ? AND memory_id IN ({_marks(len(chunk))})",
                    (agent, *chunk),
                )
            await db.executemany(_INSERT_MEMORY, [_memory_params(m) for m in insert])
            row = await self._one(
                db,
                "UPDATE personas SET memory_revision = memory_revision + 1,"
                " memory_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1),"
                " core_count = (SELECT COUNT(*) FROM memories WHERE agent = ?1 AND kind = ?2)"
                " WHERE agent = ?1 RETURNING memory_revision",
                agent,
                int(Kind.CORE),
            )
            return int(row[0])

    async def set_vectors(
        self, agent: str, *, expected_revision: int, model: str, vectors: Mapping[str, Vector]
    ) -> int:
        dims = {int(v.shape[0]) for v in vectors.values()}
        async with self._tx() as db:
            await self._expect(db, agent, expected_revision)
            await db.executemany(
                "UPDATE memories SET model = ?, vector = ? WHERE agent = ? AND memory_id = ?",
                [(model, vector_bytes(v), agent, mid) for mid, v in vectors.items()],
            )
            row = await self._one(
                db,
                "UPDATE personas SET memory_revision = memory_revision + 1, embedding_model = ?,"
                " embedding_dimension = ? WHERE agent = ? RETURNING memory_revision",
                model if vectors else "",
                dims.pop() if dims else 0,
                agent,
            )
            return int(row[0])

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        row = await self._one(
            self._r,
            "SELECT op, result FROM requests WHERE agent = ? AND request_id = ?",
            agent,
            request_id,
        )
        return None if row is None else (row[0], row[1])

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        async with self._tx() as db:
            await self._claim(db, agent, request_id, op, result)

    # relationships

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow | None:
        row = await self._one(
            self._r,
            "SELECT doc FROM relationships WHERE agent = ? AND counterparty = ?",
            agent,
            counterparty,
        )
        return None if row is None else relationship_row(agent, counterparty, json.loads(row[0]))

    async def list_relationships(self, agent: str, after: str, limit: int) -> list[RelationshipRow]:
        rows = await self._r.execute_fetchall(
            "SELECT counterparty, doc FROM relationships WHERE agent = ? AND counterparty > ?"
            " ORDER BY counterparty LIMIT ?",
            (agent, after, limit),
        )
        return [relationship_row(agent, r[0], json.loads(r[1])) for r in rows]

    async def mutate_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> tuple[RelationshipRow, bool]:
        async with self._tx() as db:
            await self._persona_in(db, agent)
            found = await self._one(
                db,
                "SELECT doc FROM relationships WHERE agent = ? AND counterparty = ?",
                agent,
                counterparty,
            )
            current = (
                RelationshipRow(agent, counterparty)
                if found is None
                else relationship_row(agent, counterparty, json.loads(found[0]))
            )
            if not await self._claim(db, agent, request_id, op, ""):
                return current, False
            updated = change(current)
            await db.execute(
                "INSERT OR REPLACE INTO relationships (agent, counterparty, doc) VALUES (?, ?, ?)",
                (agent, counterparty, json.dumps(relationship_doc(updated))),
            )
            return updated, True
