"""The state every use case shares: store, embedder, index cache, and the checks they all make."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from puppet_memory.embedding import Embedder
from puppet_memory.recall import IndexCache, PersonaIndex, Scanner
from puppet_memory.store import (
    EmbeddingMismatchError,
    MemoryStore,
    PersonaNotFoundError,
    PersonaRow,
    RequestIdReusedError,
    StoreError,
    Vector,
)

log = logging.getLogger(__name__)
_EMBED_BATCH = 64
_QUERY_CACHE = 1_024


def now_us() -> int:
    return time.time_ns() // 1_000


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class EmbedderError(StoreError):
    """The embedder failed: rejected means it refused its configuration, else try again later."""

    def __init__(self, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


def unit(vector: Vector) -> Vector:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class DomainBase:
    """Holds the store, embedder and caches; the use-case layers build on it."""

    def __init__(
        self, store: MemoryStore, embedder: Embedder, *, default_budget: int, cache_vectors: int
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.default_budget = default_budget
        self._cache = IndexCache(cache_vectors)
        self._scanner = Scanner()
        self._queries: OrderedDict[tuple[str, str], Vector] = OrderedDict()
        """Recent recall queries' vectors (an agent recalls with the same few texts: its
        description, its topics), by (embedder model, text); at most _QUERY_CACHE, LRU."""

    async def close(self) -> None:
        self._scanner.close()

    def budget_of(self, persona: PersonaRow) -> int:
        return persona.memory_budget or self.default_budget

    async def persona(self, agent: str) -> PersonaRow:
        row = await self.store.get_persona(agent)
        if row is None:
            raise PersonaNotFoundError(agent)
        return row

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

    async def query_vector(self, text: str) -> Vector:
        """The vector of a recall query, from the recent-queries cache when it is there."""
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

    async def _replayed(self, agent: str, request_id: str | None, op: str) -> str | None:
        if not request_id:
            return None
        found = await self.store.find_request(agent, request_id)
        if found is None:
            return None
        if found[0] != op:
            raise RequestIdReusedError(request_id, found[0])
        return found[1]
