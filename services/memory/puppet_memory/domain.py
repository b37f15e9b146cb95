"""What MemoryService does, in domain terms: embedding, budgets, recall, consolidation."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from puppet_memory import consolidation
from puppet_memory.embedding import Embedder
from puppet_memory.groups import GroupCommit
from puppet_memory.recall import Hit, IndexCache, PersonaIndex, RecallQuery, Scanner
from puppet_memory.store import (
    BudgetExhaustedError,
    Channel,
    EmbeddingMismatchError,
    Insert,
    Kind,
    MemoryChange,
    MemoryNotFoundError,
    MemoryRow,
    MemoryStore,
    Mood,
    PersonaChange,
    PersonaExistsError,
    PersonaNotFoundError,
    PersonaRow,
    RelationshipChange,
    RelationshipNotFoundError,
    RelationshipRow,
    RequestIdReusedError,
    RevisionConflictError,
    StoreError,
    Vector,
)

log = logging.getLogger(__name__)
_ATTEMPTS = 3
_EMBED_BATCH = 64
_QUERY_CACHE = 1_024
_GROUP_ROWS = 1_000  # a group of concurrent creates stops growing here


def now_us() -> int:
    return time.time_ns() // 1_000


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class EmbedderError(StoreError):
    """The embedder failed: rejected means it refused its configuration, else try again later."""

    def __init__(self, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


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


@dataclass(frozen=True, slots=True)
class _Create:
    """One create call's rows, waiting for its group's transaction."""

    inserts: list[Insert]
    cores: int

    @property
    def shapes(self) -> list[tuple[str, int]]:
        return [(i.row.embedding_model, i.row.dimension) for i in self.inserts]


@dataclass(frozen=True, slots=True)
class Consolidated:
    """What a consolidation did."""

    merged_count: int
    pruned_count: int
    summary_id: str | None
    memory_count: int


class MemoryDomain:
    """The use cases behind every RPC; knows neither protos nor SQL."""

    def __init__(
        self, store: MemoryStore, embedder: Embedder, *, default_budget: int, cache_vectors: int
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.default_budget = default_budget
        self._cache = IndexCache(cache_vectors)
        self._queries: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        """Recent recall queries' vectors (an agent recalls with the same few texts: its
        description, its topics), by (embedder model, text); at most _QUERY_CACHE, LRU."""
        self._scanner = Scanner()
        self._creates: GroupCommit[_Create, list[MemoryRow]] = GroupCommit(
            self._flush_creates, weight=lambda c: len(c.inserts), max_weight=_GROUP_ROWS
        )

    async def close(self) -> None:
        self._scanner.close()

    def budget_of(self, persona: PersonaRow) -> int:
        return persona.memory_budget or self.default_budget

    async def persona(self, agent: str) -> PersonaRow:
        row = await self.store.get_persona(agent)
        if row is None:
            raise PersonaNotFoundError(agent)
        return row

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

    @staticmethod
    def _check(persona: PersonaRow, model: str, dim: int) -> None:
        expected = (persona.embedding_model, persona.embedding_dimension)
        if persona.memory_count and expected != (model, dim):
            raise EmbeddingMismatchError(expected, (model, dim))

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        out: list[Vector] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = texts[start : start + _EMBED_BATCH]
            try:
                got = np.asarray(await self.embedder.embed(batch), dtype=np.float32)
            except Exception as err:
                log.exception("embedder %s failed", self.embedder.model)
                # The embedders are imported lazily, so match their documented error names.
                rejected = "EmbeddingRejected" in {c.__name__ for c in type(err).__mro__}
                raise EmbedderError(str(err), rejected=rejected) from err
            if got.shape != (len(batch), self.embedder.dimension) or not np.isfinite(got).all():
                raise EmbedderError(f"embedder returned shape {got.shape}")
            out.extend(unit(v) for v in got)
        return out

    async def _query_vector(self, text: str) -> Vector:
        key = (self.embedder.model, text)
        vector = self._queries.get(key)
        if vector is None:
            vector = (await self.embed([text]))[0]
            vector.flags.writeable = False
            self._queries[key] = vector
            if len(self._queries) > _QUERY_CACHE:
                self._queries.popitem(last=False)
        else:
            self._queries.move_to_end(key)
        return vector

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

    async def _index(self, agent: str, persona: PersonaRow) -> PersonaIndex:
        index = self._cache.get(agent, persona.memory_revision)
        if index is not None:
            return index
        snapshot = await self.store.load_index(agent)
        if snapshot is None:
            raise PersonaNotFoundError(agent)
        index = PersonaIndex(snapshot)
        self._cache.put(agent, index)
        return index

    async def recall(
        self, agent: str, query: str | tuple[str, Vector], params: RecallQuery
    ) -> tuple[list[tuple[Hit, MemoryRow]], str]:
        persona = await self.persona(agent)
        if persona.memory_count == 0:
            return [], persona.embedding_model
        if isinstance(query, str):
            self._check(persona, self.embedder.model, self.embedder.dimension)
            vector = await self._query_vector(query)
        else:
            self._check(persona, query[0], int(query[1].shape[0]))
            vector = unit(query[1])
        index = await self._index(agent, persona)
        hits = await self._scanner.search(index, replace(params, vector=vector))
        rows = {
            m.memory_id: m
            for m in await self.store.get_memories(agent, [h.memory_id for h in hits])
        }
        return [
            (h, rows[h.memory_id]) for h in hits if h.memory_id in rows
        ], persona.embedding_model

    async def _replayed(self, agent: str, request_id: str | None, op: str) -> str | None:
        if not request_id:
            return None
        found = await self.store.find_request(agent, request_id)
        if found is None:
            return None
        if found[0] != op:
            raise RequestIdReusedError(request_id, found[0])
        return found[1]

    async def reembed(self, agent: str, request_id: str | None) -> tuple[int, str, int]:
        await self.persona(agent)
        prior = await self._replayed(agent, request_id, "reembed")
        if prior is not None:
            count, model, dim = json.loads(prior)
            return int(count), str(model), int(dim)
        for _ in range(_ATTEMPTS):
            persona = await self.persona(agent)
            ids = (await self._index(agent, persona)).columns()[0]
            rows = await self.store.get_memories(agent, ids)
            vectors = await self.embed([r.content for r in rows])
            try:
                await self.store.set_vectors(
                    agent,
                    expected_revision=persona.memory_revision,
                    model=self.embedder.model,
                    vectors={r.memory_id: v for r, v in zip(rows, vectors, strict=True)},
                )
            except RevisionConflictError:
                continue
            finally:
                self._cache.drop(agent)
            result = (
                len(rows),
                self.embedder.model if rows else "",
                self.embedder.dimension if rows else 0,
            )
            if request_id:
                await self.store.record_request(agent, request_id, "reembed", json.dumps(result))
            return result
        raise RevisionConflictError(agent)

    async def consolidate(
        self, agent: str, target: int | None, request_id: str | None
    ) -> tuple[Consolidated, MemoryRow | None]:
        await self.persona(agent)
        prior = await self._replayed(agent, request_id, "consolidate")
        if prior is not None:
            done = Consolidated(**json.loads(prior))
            found = await self.store.get_memories(
                agent, [done.summary_id] if done.summary_id else []
            )
            return done, found[0] if found else None
        for _ in range(_ATTEMPTS):
            try:
                done, summary = await self._consolidate_once(agent, target)
            except RevisionConflictError:
                continue
            if request_id:
                await self.store.record_request(
                    agent, request_id, "consolidate", json.dumps(asdict(done))
                )
            return done, summary
        raise RevisionConflictError(agent)

    async def _consolidate_once(
        self, agent: str, target: int | None
    ) -> tuple[Consolidated, MemoryRow | None]:
        persona = await self.persona(agent)
        t = now_us()
        ids, kinds, importance, times = (await self._index(agent, persona)).columns()
        goal = self.budget_of(persona) if target is None else target
        chosen = consolidation.choose(ids, kinds, importance, times, target=goal, now_us=t)
        if not chosen:
            return Consolidated(0, 0, None, persona.memory_count), None
        rows = await self.store.get_memories(agent, chosen)
        merged = [r for r in rows if r.importance >= consolidation.PRUNE_BELOW]
        summary = consolidation.summarise(agent, merged, t) if merged else None
        await self.store.replace_memories(
            agent,
            expected_revision=persona.memory_revision,
            delete_ids=chosen,
            insert=[summary] if summary else [],
        )
        self._cache.drop(agent)
        count = persona.memory_count - len(rows) + (1 if summary else 0)
        pruned = len(rows) - len(merged)
        summary_id = None if summary is None else summary.memory_id
        return Consolidated(len(merged), pruned, summary_id, count), summary

    async def _auto_consolidate(self, agent: str, budget: int) -> None:
        try:
            await self.consolidate(agent, int(budget * consolidation.AUTO_TARGET), None)
        except RevisionConflictError:
            log.info("consolidation of %s raced with a write; the next write retries", agent)

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


def unit(vector: Vector) -> Vector:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v
