"""What MemoryService does, in domain terms: personas, memories, recall, relationships."""

from __future__ import annotations

from dataclasses import replace

from puppet_memory.creates import Creates, Draft
from puppet_memory.domain_base import EmbedderError, clamp, now_us, unit
from puppet_memory.recall import Hit, RecallQuery
from puppet_memory.store import (
    Kind,
    MemoryChange,
    MemoryNotFoundError,
    MemoryRow,
    Mood,
    PersonaChange,
    PersonaExistsError,
    PersonaNotFoundError,
    PersonaRow,
    RelationshipChange,
    RelationshipNotFoundError,
    RelationshipRow,
    Vector,
)
from puppet_memory.upkeep import Consolidated

__all__ = [
    "Consolidated",
    "Draft",
    "EmbedderError",
    "MemoryDomain",
    "clamp",
    "now_us",
    "unit",
]


class MemoryDomain(Creates):
    """The use cases behind every RPC; knows neither protos nor SQL.

    Layered: DomainBase (shared state and checks) < Upkeep (reembed, consolidate) < Creates
    (create_memories) < MemoryDomain (the rest).
    """

    # personas

    async def create_persona(
        self, row: PersonaRow, request_id: str | None, *, allow_existing: bool
    ) -> PersonaRow:
        t = now_us()
        try:
            return await self.store.create_persona(
                replace(row, create_time_us=t, update_time_us=t), request_id
            )
        except PersonaExistsError:
            if allow_existing:
                return await self.persona(row.agent)
            raise

    async def delete_persona(self, agent: str, *, allow_missing: bool) -> None:
        self._cache.drop(agent)
        if not await self.store.delete_persona(agent) and not allow_missing:
            raise PersonaNotFoundError(agent)

    async def update_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> PersonaRow:
        t = now_us()
        row, _ = await self.store.mutate_persona(
            agent, lambda p: replace(change(p), update_time_us=t), op=op, request_id=request_id
        )
        return row

    async def shift_mood(self, agent: str, delta: Mood, request_id: str | None) -> PersonaRow:
        def shift(p: PersonaRow) -> PersonaRow:
            m = p.mood
            return replace(
                p,
                mood=Mood(
                    clamp(m.valence + delta.valence, -1.0, 1.0),
                    clamp(m.arousal + delta.arousal, 0.0, 1.0),
                    clamp(m.dominance + delta.dominance, 0.0, 1.0),
                ),
            )

        return await self.update_persona(agent, shift, op="shift_mood", request_id=request_id)

    # memories

    async def get_memory(self, agent: str, memory_id: str) -> MemoryRow:
        found = await self.store.get_memories(agent, [memory_id])
        if found:
            return found[0]
        await self.persona(agent)
        raise MemoryNotFoundError(memory_id)

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
    ) -> list[MemoryRow]:
        await self.persona(agent)
        return await self.store.list_memories(agent, kinds, before, limit)

    async def update_memory(self, agent: str, memory_id: str, change: MemoryChange) -> MemoryRow:
        await self.persona(agent)
        t = now_us()
        done = await self.store.update_memory(
            agent, memory_id, lambda m: replace(change(m), update_time_us=t)
        )
        if done is None:
            raise MemoryNotFoundError(memory_id)
        self._cache.updated(agent, done[0], done[1])
        return done[0]

    async def delete_memory(self, agent: str, memory_id: str, *, allow_missing: bool) -> None:
        await self.persona(agent)
        revision = await self.store.delete_memory(agent, memory_id)
        if revision is None:
            if not allow_missing:
                raise MemoryNotFoundError(memory_id)
            return
        self._cache.removed(agent, memory_id, revision)

    async def recall(
        self, agent: str, query: str | tuple[str, Vector], params: RecallQuery
    ) -> tuple[list[tuple[Hit, MemoryRow]], PersonaRow]:
        """The best matches, with the persona as read for the recall."""
        persona = await self.persona(agent)
        if persona.memory_count == 0:
            return [], persona
        if isinstance(query, str):
            self._check(persona, self.embedder.model, self.embedder.dimension)
            vector = await self.query_vector(query)
        else:
            self._check(persona, query[0], int(query[1].shape[0]))
            vector = unit(query[1])
        index = await self._index(agent, persona)
        hits = await self._scanner.search(index, replace(params, vector=vector))
        rows = {
            m.memory_id: m
            for m in await self.store.get_memories(agent, [h.memory_id for h in hits])
        }
        return [(h, rows[h.memory_id]) for h in hits if h.memory_id in rows], persona

    # relationships

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow:
        row = await self.store.get_relationship(agent, counterparty)
        if row is not None:
            return row
        await self.persona(agent)
        raise RelationshipNotFoundError(counterparty)

    async def list_relationships(self, agent: str, after: str, limit: int) -> list[RelationshipRow]:
        await self.persona(agent)
        return await self.store.list_relationships(agent, after, limit)

    async def change_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> RelationshipRow:
        t = now_us()

        def stamped(r: RelationshipRow) -> RelationshipRow:
            r = change(r)
            return replace(r, create_time_us=r.create_time_us or t, update_time_us=t)

        row, _ = await self.store.mutate_relationship(
            agent, counterparty, stamped, op=op, request_id=request_id
        )
        return row
