"""Plain-dict forms of the rows, shared by the SQLite (JSON columns) and MongoDB adapters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from puppet_memory.store import Mood, PersonaRow, RelationshipRow, Vector


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
