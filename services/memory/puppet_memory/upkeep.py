"""Whole-persona upkeep: re-embedding every memory and consolidating over budget."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from puppet_memory import consolidation
from puppet_memory.domain_base import DomainBase, now_us
from puppet_memory.store import MemoryRow, RevisionConflictError

log = logging.getLogger(__name__)
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Consolidated:
    """What a consolidation did."""

    merged_count: int
    pruned_count: int
    summary_id: str | None
    memory_count: int


class Upkeep(DomainBase):
    """Re-embedding and consolidation, each retried when a write races it."""

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
