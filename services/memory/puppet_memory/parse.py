"""Requests to domain inputs: each parser validates into Checks and returns domain values."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
from puppet.memory.v1 import (
    memory_pb2,
    persona_pb2,
    relationship_pb2,
)
from puppet.memory.v1 import (
    memory_service_pb2 as pb,
)

from puppet_memory.domain import Draft, clamp
from puppet_memory.recall import HOUR_US, RecallQuery
from puppet_memory.store import (
    Kind,
    MemoryChange,
    Mood,
    PersonaChange,
    PersonaRow,
    RelationshipChange,
    RelationshipRow,
    StateTooLargeError,
    Vector,
)
from puppet_memory.validation import MAX_BUDGET, MAX_CONTENT, MAX_ENTRIES, Checks

MAX_NOTES = 20
MAX_NOTE = 500
PERSONA_PATHS = frozenset(
    {
        "display_name",
        "mood",
        "baseline_mood",
        "last_post_time",
        "last_mention_id",
        "state",
        "memory_budget",
    }
)
MEMORY_PATHS = frozenset({"kind", "importance", "emotional_valence", "associations", "metadata"})
RELATIONSHIP_PATHS = frozenset(
    {"sentiment", "familiarity", "trust", "last_interaction_time", "notes"}
)
TEN_YEARS_S = 10 * 365 * 24 * 3600


def draft(c: Checks, req: pb.CreateMemoryRequest, prefix: str, request_id: str | None) -> Draft:
    m, f = req.memory, f"{prefix}memory"
    if not req.HasField("memory"):
        c.fail(f, "is required")
    prov = m.provenance
    return Draft(
        kind=c.kind(f"{f}.kind", m.kind, default=Kind.GENERAL),
        content=c.text(f"{f}.content", m.content, low=1, high=MAX_CONTENT),
        importance=c.number(f"{f}.importance", m.importance, 0, 1)
        if m.HasField("importance")
        else 0.5,
        valence=c.number(f"{f}.emotional_valence", m.emotional_valence, -1, 1),
        associations=c.strings(f"{f}.associations", m.associations, most=MAX_ENTRIES, each=128),
        metadata=c.string_map(f"{f}.metadata", m.metadata, value_max=1_024),
        source=c.text(f"{f}.provenance.source", prov.source, high=64),
        channel=c.channel(f"{f}.provenance.channel", prov.channel),
        trust=c.number(f"{f}.provenance.trust", prov.trust, 0, 1)
        if prov.HasField("trust")
        else 0.5,
        create_time_us=c.timestamp(f"{f}.create_time", m.create_time, past=True)
        if m.HasField("create_time")
        else None,
        embedding=c.embedding(f"{prefix}embedding", req.embedding)
        if req.HasField("embedding")
        else None,
        request_id=c.request_id(f"{prefix}request_id", req.request_id) or request_id,
        last_post_time_us=c.timestamp(f"{prefix}last_post_time", req.last_post_time, past=True)
        if req.HasField("last_post_time")
        else None,
    )


def mood(c: Checks, field: str, m: persona_pb2.Mood) -> Mood:
    return Mood(
        c.number(f"{field}.valence", m.valence, -1, 1),
        c.number(f"{field}.arousal", m.arousal, 0, 1),
        c.number(f"{field}.dominance", m.dominance, 0, 1),
    )


def persona_row(c: Checks, agent: str, p: persona_pb2.Persona) -> PersonaRow:
    baseline = mood(c, "persona.baseline_mood", p.baseline_mood)
    return PersonaRow(
        agent=agent,
        display_name=c.text("persona.display_name", p.display_name, high=128),
        mood=mood(c, "persona.mood", p.mood) if p.HasField("mood") else baseline,
        baseline_mood=baseline,
        last_post_time_us=c.timestamp("persona.last_post_time", p.last_post_time, past=True)
        if p.HasField("last_post_time")
        else None,
        last_mention_id=c.text("persona.last_mention_id", p.last_mention_id, high=64),
        state=c.string_map("persona.state", p.state, value_max=1_024),
        memory_budget=budget(c, "persona.memory_budget", p.memory_budget),
    )


def budget(c: Checks, field: str, value: int) -> int:
    if not 0 <= value <= MAX_BUDGET:
        c.fail(field, f"must be 0 (service default) or 1-{MAX_BUDGET}")
    return value


def persona_change(c: Checks, p: persona_pb2.Persona, paths: list[str]) -> PersonaChange:
    given = persona_row(c, "", p)
    names = [_PERSONA_FIELD.get(path, path) for path in paths if path in PERSONA_PATHS]
    fields = {name: getattr(given, name) for name in names}
    keys = [path.removeprefix("state.") for path in paths if path.startswith("state.")]
    for key in keys:
        if not 1 <= len(key) <= 64:
            c.fail("update_mask.paths", "state keys must be 1-64 characters")

    def change(row: PersonaRow) -> PersonaRow:
        row = replace(row, **fields)
        if keys:
            state = dict(row.state)
            for key in keys:
                if key in given.state:
                    state[key] = given.state[key]
                else:
                    state.pop(key, None)
            if len(state) > MAX_ENTRIES:
                raise StateTooLargeError(MAX_ENTRIES)
            row = replace(row, state=state)
        return row

    return change


_PERSONA_FIELD = {"last_post_time": "last_post_time_us"}


def memory_change(c: Checks, m: memory_pb2.Memory, paths: list[str]) -> MemoryChange:
    values = {
        "kind": c.kind("memory.kind", m.kind, default=Kind.GENERAL),
        "importance": c.number("memory.importance", m.importance, 0, 1)
        if m.HasField("importance")
        else 0.5,
        "valence": c.number("memory.emotional_valence", m.emotional_valence, -1, 1),
        "associations": c.strings(
            "memory.associations", m.associations, most=MAX_ENTRIES, each=128
        ),
        "metadata": c.string_map("memory.metadata", m.metadata, value_max=1_024),
    }
    names = {"emotional_valence": "valence"}
    chosen: dict[str, Any] = {
        names.get(p, p): values[names.get(p, p)] for p in paths if p in MEMORY_PATHS
    }
    return lambda row: replace(row, **chosen)


def relationship_change(
    c: Checks, r: relationship_pb2.Relationship, paths: list[str]
) -> RelationshipChange:
    values = {
        "sentiment": c.number("relationship.sentiment", r.sentiment, -1, 1),
        "familiarity": c.number("relationship.familiarity", r.familiarity, 0, 1),
        "trust": c.number("relationship.trust", r.trust, 0, 1),
        "last_interaction_time_us": c.timestamp(
            "relationship.last_interaction_time", r.last_interaction_time, past=True
        )
        if r.HasField("last_interaction_time")
        else None,
        "notes": c.strings("relationship.notes", r.notes, most=MAX_NOTES, each=MAX_NOTE),
    }
    names = {"last_interaction_time": "last_interaction_time_us"}
    chosen: dict[str, Any] = {
        names.get(p, p): values[names.get(p, p)] for p in paths if p in RELATIONSHIP_PATHS
    }
    return lambda row: replace(row, **chosen)


def interaction(c: Checks, req: pb.RecordInteractionRequest) -> RelationshipChange:
    ds = c.number("sentiment_delta", req.sentiment_delta, -2, 2)
    df = c.number("familiarity_delta", req.familiarity_delta, -1, 1)
    dt = c.number("trust_delta", req.trust_delta, -1, 1)
    note = c.text("note", req.note, high=MAX_NOTE)
    when = (
        c.timestamp("interaction_time", req.interaction_time, past=True)
        if req.HasField("interaction_time")
        else None
    )

    def change(row: RelationshipRow) -> RelationshipRow:
        return replace(
            row,
            sentiment=clamp(row.sentiment + ds, -1, 1),
            familiarity=clamp(row.familiarity + df, 0, 1),
            trust=clamp(row.trust + dt, 0, 1),
            interaction_count=row.interaction_count + 1,
            last_interaction_time_us=when if when is not None else time.time_ns() // 1_000,
            notes=(note, *row.notes)[:MAX_NOTES] if note else row.notes,
        )

    return change


def recall(
    c: Checks, req: pb.RecallMemoriesRequest
) -> tuple[str | tuple[str, Vector], RecallQuery]:
    which = req.WhichOneof("query")
    query: str | tuple[str, Vector]
    if which == "text":
        query = c.text("text", req.text, low=1, high=MAX_CONTENT)
    elif which == "embedding":
        query = c.embedding("embedding", req.embedding)
    else:
        c.fail("query", "set exactly one of text or embedding")
        query = ""
    if not 0 <= req.top_k <= 100:
        c.fail("top_k", "must be 1-100 (0 means 10)")
    w = req.weights
    weights = (
        c.number("weights.similarity", w.similarity, 0, 1) if w.HasField("similarity") else 0.7,
        c.number("weights.recency", w.recency, 0, 1) if w.HasField("recency") else 0.15,
        c.number("weights.importance", w.importance, 0, 1) if w.HasField("importance") else 0.15,
    )
    if not any(weights):
        c.fail("weights", "at least one weight must be above 0")
    params = RecallQuery(
        vector=np.zeros(0, np.float32),
        top_k=req.top_k or 10,
        now_us=time.time_ns() // 1_000,
        kinds=c.kinds("kinds", req.kinds),
        min_trust=c.number("min_trust", req.min_trust, 0, 1),
        min_importance=c.number("min_importance", req.min_importance, 0, 1),
        after_us=c.timestamp("create_time_after", req.create_time_after)
        if req.HasField("create_time_after")
        else None,
        before_us=c.timestamp("create_time_before", req.create_time_before)
        if req.HasField("create_time_before")
        else None,
        w_similarity=weights[0],
        w_recency=weights[1],
        w_importance=weights[2],
        half_life_us=c.duration_us("recency_half_life", req.recency_half_life, 1, TEN_YEARS_S)
        if req.HasField("recency_half_life")
        else 72 * HOUR_US,
    )
    return query, params
