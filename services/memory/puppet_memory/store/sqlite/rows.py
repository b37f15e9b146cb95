"""SQLite tables, row codecs and the small helpers every transaction uses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from puppet_memory.store import MemoryRow, PersonaNotFoundError, PersonaRow, RevisionConflictError
from puppet_memory.store.records import MEMORY_FIELDS, memory_row, memory_values, persona_row
from puppet_memory.store.rules import check_request_op

SCHEMA = """
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
_PERSONA_FIELDS = (
    "agent",
    "state",
    "create_time_us",
    "memory_count",
    "core_count",
    "embedding_model",
    "embedding_dimension",
    "memory_revision",
)
PERSONA_COLS = ", ".join(_PERSONA_FIELDS)
MEMORY_COLS = ", ".join(MEMORY_FIELDS)
INSERT_MEMORY = f"INSERT OR REPLACE INTO memories ({MEMORY_COLS}) VALUES ({', '.join('?' * 15)})"
_CHUNK = 500


def persona_of(r: Sequence[Any]) -> PersonaRow:
    doc = dict(zip(_PERSONA_FIELDS, r, strict=True))
    doc["state"] = json.loads(doc["state"])
    return persona_row(doc["agent"], doc)


def memory_of(r: Sequence[Any]) -> MemoryRow:
    return memory_row(r, json.loads)


def memory_params(m: MemoryRow) -> tuple[Any, ...]:
    return memory_values(m, json.dumps)


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def marks(n: int) -> str:
    return ", ".join("?" * n)


def one(db: sqlite3.Connection, sql: str, *params: Any) -> Any:
    # fetchall, not fetchone: a half-stepped UPDATE ... RETURNING would block the COMMIT.
    rows = db.execute(sql, params).fetchall()
    return rows[0] if rows else None


def persona_or_none(db: sqlite3.Connection, agent: str) -> PersonaRow | None:
    row = one(db, f"SELECT {PERSONA_COLS} FROM personas WHERE agent = ?", agent)
    return None if row is None else persona_of(row)


def persona_in(db: sqlite3.Connection, agent: str) -> PersonaRow:
    found = persona_or_none(db, agent)
    if found is None:
        raise PersonaNotFoundError(agent)
    return found


def claim(db: sqlite3.Connection, agent: str, request_id: str | None, op: str, result: str) -> bool:
    """Record request_id for op; False if it was already recorded (a replay)."""
    if not request_id:
        return True
    found = one(db, "SELECT op FROM requests WHERE agent = ? AND request_id = ?", agent, request_id)
    if found is not None:
        check_request_op(request_id, found[0], op)
        return False
    db.execute(
        "INSERT INTO requests (agent, request_id, op, result) VALUES (?, ?, ?, ?)",
        (agent, request_id, op, result),
    )
    return True


def get_memories(db: sqlite3.Connection, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
    out: list[MemoryRow] = []
    for chunk in chunks(memory_ids):
        rows = db.execute(
            f"SELECT {MEMORY_COLS} FROM memories WHERE agent = ? "
            f"AND memory_id IN ({marks(len(chunk))})",
            (agent, *chunk),
        ).fetchall()
        out.extend(memory_of(r) for r in rows)
    return out


def expect(db: sqlite3.Connection, agent: str, revision: int) -> None:
    if persona_in(db, agent).memory_revision != revision:
        raise RevisionConflictError(agent)
