"""Creating memories: embed, then write concurrent calls for a persona in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from puppet_runtime.groups import GroupCommit

from puppet_memory.domain_base import now_us, unit
from puppet_memory.embedding import Embedder
from puppet_memory.store import (
    BudgetExhaustedError,
    Channel,
    Insert,
    Kind,
    MemoryRow,
    MemoryStore,
    PersonaRow,
    Vector,
)
from puppet_memory.upkeep import Upkeep

log = logging.getLogger(__name__)
_GROUP_ROWS = 1_000  # a group of concurrent creates stops growing here


@dataclass(frozen=True, slots=True)
class Draft:
    """A memory to create, validated; vector is (model, raw values) when the caller gave one."""

    kind: Kind
    content: str
    importance: float
    valence: float
    associations: tuple[str, ...]
    metadata: dict[str, str]
    source: str
    channel: Channel
    trust: float
    create_time_us: int | None
    embedding: tuple[str, Vector] | None
    request_id: str | None
    last_post_time_us: int | None = None


@dataclass(frozen=True, slots=True)
class _Create:
    """One create call's rows, waiting for its group's transaction."""

    inserts: list[Insert]
    cores: int

    @property
    def shapes(self) -> list[tuple[str, int]]:
        return [(i.row.embedding_model, i.row.dimension) for i in self.inserts]


class Creates(Upkeep):
    """create_memories and the group commit behind it."""

    def __init__(
        self, store: MemoryStore, embedder: Embedder, *, default_budget: int, cache_vectors: int
    ) -> None:
        super().__init__(
            store, embedder, default_budget=default_budget, cache_vectors=cache_vectors
        )
        self._creates: GroupCommit[_Create, list[MemoryRow]] = GroupCommit(
            self._flush_creates, weight=lambda c: len(c.inserts), max_weight=_GROUP_ROWS
        )

    async def create_memories(self, agent: str, drafts: Sequence[Draft]) -> list[MemoryRow]:
        cores = sum(1 for d in drafts if d.kind is Kind.CORE)
        if any(d.embedding is None for d in drafts):
            # Refuse before spending the embedder's time; the group checks again when it writes.
            self._admit(await self.persona(agent), cores, self._shapes(drafts))
        vectors = await self._vectors_for(drafts)
        t = now_us()
        inserts = [
            Insert(
                MemoryRow(
                    agent=agent,
                    memory_id=uuid.uuid4().hex,
                    kind=d.kind,
                    content=d.content,
                    importance=d.importance,
                    valence=d.valence,
                    associations=d.associations,
                    metadata=d.metadata,
                    source=d.source,
                    channel=d.channel,
                    trust=d.trust,
                    create_time_us=t if d.create_time_us is None else d.create_time_us,
                    update_time_us=t,
                    embedding_model=model,
                    vector=vector,
                ),
                d.request_id,
                d.last_post_time_us,
            )
            for d, (model, vector) in zip(drafts, vectors, strict=True)
        ]
        return await self._creates.submit(agent, _Create(inserts, cores))

    def _shapes(self, drafts: Sequence[Draft]) -> list[tuple[str, int]]:
        return [
            (self.embedder.model, self.embedder.dimension)
            if d.embedding is None
            else (d.embedding[0], int(d.embedding[1].shape[0]))
            for d in drafts
        ]

    def _admit(self, persona: PersonaRow, cores: int, shapes: Sequence[tuple[str, int]]) -> None:
        """Refuse a create that core memories would push over the budget, or of another model."""
        budget = self.budget_of(persona)
        if persona.core_count >= budget or persona.core_count + cores > budget:
            raise BudgetExhaustedError(budget)
        for model, dim in dict.fromkeys(shapes):
            self._check(persona, model, dim)

    async def _flush_creates(
        self, agent: str, group: Sequence[_Create]
    ) -> list[list[MemoryRow] | BaseException]:
        """Write a group of create calls in one transaction, each judged as if it came alone."""

        def admit(persona: PersonaRow) -> None:  # in the transaction, before the insert
            cores = persona.core_count
            for create in group:  # in arrival order, as if one after the other
                self._admit(replace(persona, core_count=cores), create.cores, create.shapes)
                cores += create.cores

        try:
            done = await self.store.insert_memories(
                agent, [item for create in group for item in create.inserts], admit
            )
        except Exception:
            if len(group) == 1:
                raise
            # One call refused or failing fails the transaction: so one by one, and each call
            # gets its own answer.
            log.debug("a group of %d creates for %s failed; one by one now", len(group), agent)
            return [await self._flush_alone(agent, create) for create in group]
        if done.revision:
            new = [row for row, created in zip(done.rows, done.created, strict=True) if created]
            self._cache.inserted(agent, new, done.revision)
        out: list[list[MemoryRow] | BaseException] = []
        start = 0
        for create in group:
            out.append(done.rows[start : start + len(create.inserts)])
            start += len(create.inserts)
        budget = self.budget_of(done.persona)
        if done.persona.memory_count > budget:
            try:
                await self._auto_consolidate(agent, budget)
            except Exception as err:
                return [err] * len(group)
        return out

    async def _flush_alone(self, agent: str, create: _Create) -> list[MemoryRow] | BaseException:
        try:
            return (await self._flush_creates(agent, [create]))[0]
        except Exception as err:
            return err

    async def _vectors_for(self, drafts: Sequence[Draft]) -> list[tuple[str, Vector]]:
        texts = [d.content for d in drafts if d.embedding is None]
        embedded = iter(await self.embed(texts) if texts else [])
        return [
            (self.embedder.model, next(embedded))
            if d.embedding is None
            else (d.embedding[0], unit(d.embedding[1]))
            for d in drafts
        ]
