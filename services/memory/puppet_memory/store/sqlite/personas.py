"""SQLite transactions on personas, relationships and the request log."""

from __future__ import annotations

import json
import sqlite3

from puppet_memory.store import (
    PersonaChange,
    PersonaExistsError,
    PersonaRow,
    RelationshipChange,
    RelationshipRow,
)
from puppet_memory.store.records import (
    persona_state,
    relationship_doc,
    relationship_row,
    with_state,
)
from puppet_memory.store.sqlite.rows import PERSONA_COLS, claim, one, persona_in, persona_of


def create_persona(db: sqlite3.Connection, row: PersonaRow, request_id: str | None) -> PersonaRow:
    found = one(db, "SELECT create_request_id FROM personas WHERE agent = ?", row.agent)
    if found is not None:
        if request_id and found[0] == request_id:
            return persona_in(db, row.agent)
        raise PersonaExistsError(row.agent)
    db.execute(
        "INSERT INTO personas (agent, state, create_time_us, create_request_id) "
        "VALUES (?, ?, ?, ?)",
        (row.agent, json.dumps(persona_state(row)), row.create_time_us, request_id),
    )
    return persona_in(db, row.agent)


def list_personas(db: sqlite3.Connection, after: str, limit: int) -> list[PersonaRow]:
    rows = db.execute(
        f"SELECT {PERSONA_COLS} FROM personas WHERE agent > ? ORDER BY agent LIMIT ?",
        (after, limit),
    ).fetchall()
    return [persona_of(r) for r in rows]


def delete_persona(db: sqlite3.Connection, agent: str) -> bool:
    if db.execute("DELETE FROM personas WHERE agent = ?", (agent,)).rowcount == 0:
        return False
    for table in ("memories", "relationships", "requests"):
        db.execute(f"DELETE FROM {table} WHERE agent = ?", (agent,))
    return True


def mutate_persona(
    db: sqlite3.Connection, agent: str, change: PersonaChange, op: str, request_id: str | None
) -> tuple[PersonaRow, bool]:
    current = persona_in(db, agent)
    if not claim(db, agent, request_id, op, ""):
        return current, False
    state = persona_state(change(current))
    db.execute("UPDATE personas SET state = ? WHERE agent = ?", (json.dumps(state), agent))
    return with_state(current, state), True


def record_request(
    db: sqlite3.Connection, agent: str, request_id: str, op: str, result: str
) -> None:
    claim(db, agent, request_id, op, result)


# relationships


def relationship(db: sqlite3.Connection, agent: str, counterparty: str) -> RelationshipRow | None:
    row = one(
        db,
        "SELECT doc FROM relationships WHERE agent = ? AND counterparty = ?",
        agent,
        counterparty,
    )
    return None if row is None else relationship_row(agent, counterparty, json.loads(row[0]))


def list_relationships(
    db: sqlite3.Connection, agent: str, after: str, limit: int
) -> list[RelationshipRow]:
    rows = db.execute(
        "SELECT counterparty, doc FROM relationships WHERE agent = ? AND counterparty > ?"
        " ORDER BY counterparty LIMIT ?",
        (agent, after, limit),
    ).fetchall()
    return [relationship_row(agent, r[0], json.loads(r[1])) for r in rows]


def mutate_relationship(
    db: sqlite3.Connection,
    agent: str,
    counterparty: str,
    change: RelationshipChange,
    op: str,
    request_id: str | None,
) -> tuple[RelationshipRow, bool]:
    persona_in(db, agent)
    current = relationship(db, agent, counterparty) or RelationshipRow(agent, counterparty)
    if not claim(db, agent, request_id, op, ""):
        return current, False
    updated = change(current)
    db.execute(
        "INSERT OR REPLACE INTO relationships (agent, counterparty, doc) VALUES (?, ?, ?)",
        (agent, counterparty, json.dumps(relationship_doc(updated))),
    )
    return updated, True
