"""Plain-dict forms of the rows, shared by the SQLite (JSON columns) and MongoDB adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from puppet_memory.store import (
    Channel,
    IndexSnapshot,
    Kind,
    MemoryRow,
    Mood,
    PersonaRow,
    RelationshipRow,
    Vector,
)

MEMORY_FIELDS = (
    "agent",
    "memory_id",
    "kind",
    "content",
    "importance",
    "valence",
    "associations",
    "metadata",
    "source",
    "channel",
    "trust",
    "create_time_us",
    "update_time_us",
    "model",
    "vector",
)
"""A memory's stored fields, in SQLite column order; MongoDB documents use the same keys."""


def _same(value: Any) -> Any:
    return value


def memory_values(m: MemoryRow, pack: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """m's values in MEMORY_FIELDS order; pack encodes associations (a list) and metadata (a
    dict); the vector is little-endian float32 bytes."""
    return (
        m.agent,
        m.memory_id,
        int(m.kind),
        m.content,
        m.importance,
        m.valence,
        pack(list(m.associations)),
        pack(dict(m.metadata)),
        m.source,
        int(m.channel),
        m.trust,
        m.create_time_us,
        m.update_time_us,
        m.embedding_model,
        vector_bytes(m.vector),
    )


def memory_row(values: Sequence[Any], unpack: Callable[[Any], Any] = _same) -> MemoryRow:
    """The inverse of memory_values(m, pack) given the inverse of pack."""
    return MemoryRow(
        agent=values[0],
        memory_id=values[1],
        kind=Kind(values[2]),
        content=values[3],
        importance=values[4],
        valence=values[5],
        associations=tuple(unpack(values[6])),
        metadata=unpack(values[7]),
        source=values[8],
        channel=Channel(values[9]),
        trust=values[10],
        create_time_us=values[11],
        update_time_us=values[12],
        embedding_model=values[13],
        vector=vector_of(bytes(values[14])),
    )


def persona_row(agent: str, doc: Mapping[str, Any]) -> PersonaRow:
    """A persona from its store-owned counters and its persona_state() dict under "state"."""
    base = PersonaRow(
        agent=agent,
        create_time_us=doc["create_time_us"],
        memory_count=doc["memory_count"],
        core_count=doc["core_count"],
        embedding_model=doc["embedding_model"],
        embedding_dimension=doc["embedding_dimension"],
        memory_revision=doc["memory_revision"],
    )
    return with_state(base, doc["state"])


def index_snapshot(revision: int, dim: int, rows: Sequence[Sequence[Any]]) -> IndexSnapshot:
    """A snapshot from rows of (memory_id, kind, importance, trust, create_time_us, vector)."""
    n = len(rows)
    blob = b"".join(r[5] for r in rows)
    return IndexSnapshot(
        revision=revision,
        ids=[r[0] for r in rows],
        vectors=np.frombuffer(blob, dtype="<f4").reshape(n, dim).astype(np.float32),
        kinds=np.fromiter((r[1] for r in rows), dtype=np.int8, count=n),
        importance=np.fromiter((r[2] for r in rows), dtype=np.float32, count=n),
        trust=np.fromiter((r[3] for r in rows), dtype=np.float32, count=n),
        create_time_us=np.fromiter((r[4] for r in rows), dtype=np.int64, count=n),
    )


def persona_state(row: PersonaRow) -> dict[str, Any]:
    """The caller-owned part of a persona (the store owns counters, model and revision)."""
    return {
        "display_name": row.display_name,
        "mood": [row.mood.valence, row.mood.arousal, row.mood.dominance],
        "baseline_mood": [
            row.baseline_mood.valence,
            row.baseline_mood.arousal,
            row.baseline_mood.dominance,
        ],
        "last_post_time_us": row.last_post_time_us,
        "last_mention_id": row.last_mention_id,
        "state": dict(row.state),
        "memory_budget": row.memory_budget,
        "update_time_us": row.update_time_us,
    }


def with_state(row: PersonaRow, doc: dict[str, Any]) -> PersonaRow:
    """row with the caller-owned fields taken from a persona_state() dict."""
    return replace(
        row,
        display_name=doc["display_name"],
        mood=Mood(*doc["mood"]),
        baseline_mood=Mood(*doc["baseline_mood"]),
        last_post_time_us=doc["last_post_time_us"],
        last_mention_id=doc["last_mention_id"],
        state=dict(doc["state"]),
        memory_budget=doc["memory_budget"],
        update_time_us=doc["update_time_us"],
    )


def relationship_doc(row: RelationshipRow) -> dict[str, Any]:
    return {
        "sentiment": row.sentiment,
        "familiarity": row.familiarity,
        "trust": row.trust,
        "interaction_count": row.interaction_count,
        "last_interaction_time_us": row.last_interaction_time_us,
        "notes": list(row.notes),
        "create_time_us": row.create_time_us,
        "update_time_us": row.update_time_us,
    }


def relationship_row(agent: str, counterparty: str, doc: dict[str, Any]) -> RelationshipRow:
    return RelationshipRow(
        agent=agent,
        counterparty=counterparty,
        sentiment=doc["sentiment"],
        familiarity=doc["familiarity"],
        trust=doc["trust"],
        interaction_count=doc["interaction_count"],
        last_interaction_time_us=doc["last_interaction_time_us"],
        notes=tuple(doc["notes"]),
        create_time_us=doc["create_time_us"],
        update_time_us=doc["update_time_us"],
    )


def vector_bytes(vector: Vector) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vector_of(blob: bytes) -> Vector:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
