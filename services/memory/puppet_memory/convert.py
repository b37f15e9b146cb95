"""Rows to protos (the only place that knows both)."""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from puppet.memory.v1 import memory_pb2, persona_pb2, relationship_pb2

from puppet_memory.recall import Hit
from puppet_memory.store import MemoryRow, Mood, PersonaRow, RelationshipRow


def timestamp(us: int | None) -> timestamp_pb2.Timestamp | None:
    if us is None:
        return None
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


def mood(m: Mood) -> persona_pb2.Mood:
    return persona_pb2.Mood(valence=m.valence, arousal=m.arousal, dominance=m.dominance)


def persona(row: PersonaRow, default_budget: int) -> persona_pb2.Persona:
    return persona_pb2.Persona(
        name=f"agents/{row.agent}",
        display_name=row.display_name,
        mood=mood(row.mood),
        baseline_mood=mood(row.baseline_mood),
        last_post_time=timestamp(row.last_post_time_us),
        last_mention_id=row.last_mention_id,
        state=dict(row.state),
        memory_budget=row.memory_budget,
        effective_memory_budget=row.memory_budget or default_budget,
        memory_count=row.memory_count,
        embedding_model=row.embedding_model,
        embedding_dimension=row.embedding_dimension,
        create_time=timestamp(row.create_time_us),
        update_time=timestamp(row.update_time_us),
    )


def memory(row: MemoryRow) -> memory_pb2.Memory:
    return memory_pb2.Memory(
        name=f"agents/{row.agent}/memories/{row.memory_id}",
        kind=memory_pb2.MemoryKind.ValueType(int(row.kind)),
        content=row.content,
        importance=row.importance,
        emotional_valence=row.valence,
        associations=list(row.associations),
        metadata=dict(row.metadata),
        provenance=memory_pb2.Provenance(
            source=row.source,
            channel=memory_pb2.ProvenanceChannel.ValueType(int(row.channel)),
            trust=row.trust,
        ),
        create_time=timestamp(row.create_time_us),
        update_time=timestamp(row.update_time_us),
        embedding_model=row.embedding_model,
        embedding_dimension=row.dimension,
    )


def scored(hit: Hit, row: MemoryRow) -> memory_pb2.ScoredMemory:
    return memory_pb2.ScoredMemory(
        memory=memory(row),
        score=hit.score,
        similarity=hit.similarity,
        recency=hit.recency,
        importance=hit.importance,
    )


def relationship(row: RelationshipRow) -> relationship_pb2.Relationship:
    return relationship_pb2.Relationship(
        name=f"agents/{row.agent}/relationships/{row.counterparty}",
        sentiment=row.sentiment,
        familiarity=row.familiarity,
        trust=row.trust,
        interaction_count=row.interaction_count,
        last_interaction_time=timestamp(row.last_interaction_time_us),
        notes=list(row.notes),
        create_time=timestamp(row.create_time_us),
        update_time=timestamp(row.update_time_us),
    )
