"""Exact top-k recall over per-persona in-RAM indexes that follow the store's revisions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from puppet_memory.store import IndexSnapshot, Kind, MemoryRow, Vector

HOUR_US = 3_600_000_000


@dataclass(frozen=True, slots=True)
class RecallQuery:
    """A validated recall: unit query vector, filters, weights, and the clock."""

    vector: Vector
    top_k: int
    now_us: int
    kinds: frozenset[Kind] = frozenset()
    min_trust: float = 0.0
    min_importance: float = 0.0
    after_us: int | None = None
    before_us: int | None = None
    w_similarity: float = 0.7
    w_recency: float = 0.15
    w_importance: float = 0.15
    half_life_us: int = 72 * HOUR_US


@dataclass(frozen=True, slots=True)
class Hit:
    """One result and the parts of its score."""

    memory_id: str
    score: float
    similarity: float
    recency: float
    importance: float


def recency(
    create_time_us: npt.NDArray[np.int64], now_us: int, half_life_us: int
) -> npt.NDArray[np.float64]:
    """0.5 ** (age / half_life); memories from the future count as new."""
    age = np.maximum(now_us - create_time_us, 0).astype(np.float64)
    return np.exp2(-age / half_life_us)


class PersonaIndex:
    """Columns of one persona's memories, growable in place (capacity doubling, swap-remove)."""

    def __init__(self, snapshot: IndexSnapshot) -> None:
        self.revision = snapshot.revision
        self.dimension = int(snapshot.vectors.shape[1]) if snapshot.vectors.ndim == 2 else 0
        self._ids = list(snapshot.ids)
        self._pos = {memory_id: i for i, memory_id in enumerate(self._ids)}
        self._vectors = np.array(snapshot.vectors, dtype=np.float32, copy=True)
        self._kinds = snapshot.kinds.copy()
        self._importance = snapshot.importance.copy()
        self._trust = snapshot.trust.copy()
        self._time = snapshot.create_time_us.copy()
        self._recency_key: tuple[int, int, int, int] | None = None
        self._recency_cache = np.zeros(0, np.float32)

    @property
    def size(self) -> int:
        return len(self._ids)

    def _reserve(self, extra: int) -> None:
        need = self.size + extra
        if need <= self._vectors.shape[0]:
            return
        cap = max(need, 2 * self._vectors.shape[0], 64)
        grow = cap - self._vectors.shape[0]
        self._vectors = np.concatenate(
            [self._vectors, np.zeros((grow, self.dimension), np.float32)]
        )
        self._kinds = np.concatenate([self._kinds, np.zeros(grow, np.int8)])
        self._importance = np.concatenate([self._importance, np.zeros(grow, np.float32)])
        self._trust = np.concatenate([self._trust, np.zeros(grow, np.float32)])
        self._time = np.concatenate([self._time, np.zeros(grow, np.int64)])

    def append(self, rows: Sequence[MemoryRow]) -> None:
        if self.size == 0 and rows and rows[0].dimension != self.dimension:
            self.dimension = rows[0].dimension
            self._vectors = np.zeros((0, self.dimension), np.float32)
            self._kinds = np.zeros(0, np.int8)
            self._importance = np.zeros(0, np.float32)
            self._trust = np.zeros(0, np.float32)
            self._time = np.zeros(0, np.int64)
        self._reserve(len(rows))
        for row in rows:
            i = self.size
            self._ids.append(row.memory_id)
            self._pos[row.memory_id] = i
            self._set(i, row)

    def _set(self, i: int, row: MemoryRow) -> None:
        self._vectors[i] = row.vector
        self._kinds[i] = int(row.kind)
        self._importance[i] = row.importance
        self._trust[i] = row.trust
        self._time[i] = row.create_time_us

    def update(self, row: MemoryRow) -> None:
        self._set(self._pos[row.memory_id], row)

    def remove(self, memory_id: str) -> None:
        i, last = self._pos.pop(memory_id), self.size - 1
        if i != last:
            moved = self._ids[last]
            self._ids[i] = moved
            self._pos[moved] = i
            for column in (self._vectors, self._kinds, self._importance, self._trust, self._time):
                column[i] = column[last]
        self._ids.pop()

    def columns(
        self,
    ) -> tuple[list[str], npt.NDArray[np.int8], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """ids, kinds, importance, create times (for consolidation)."""
        n = self.size
        return list(self._ids), self._kinds[:n], self._importance[:n], self._time[:n]

    def search(self, q: RecallQuery) -> list[Hit]:
        n = self.size
        if n == 0:
            return []
        # Memory-bandwidth bound: one pass over the vectors, then cheap in-place arithmetic.
        sim = np.dot(self._vectors[:n], q.vector)
        rec = self._recency(q.now_us, q.half_life_us)
        imp = self._importance[:n]
        score = sim * np.float32(q.w_similarity)
        score += np.float32(q.w_recency) * rec
        score += np.float32(q.w_importance) * imp
        mask = self._mask(q)
        candidates = np.arange(n) if mask is None else np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        k = min(q.top_k, candidates.size)
        sub = score[candidates]
        top = np.argpartition(-sub, k - 1)[:k] if k < candidates.size else np.arange(k)
        best = candidates[top[np.argsort(-sub[top], kind="stable")]]
        return [
            Hit(self._ids[i], float(score[i]), float(sim[i]), float(rec[i]), float(imp[i]))
            for i in best
        ]

    def _recency(self, now_us: int, half_life_us: int) -> npt.NDArray[np.float32]:
        """Recency of every row, reused for up to a second (invisible at a 1 s half-life floor)."""
        key = (now_us // 1_000_000, half_life_us, self.size, self.revision)
        if self._recency_key != key:
            age = (now_us - self._time[: self.size]).astype(np.float32)
            np.maximum(age, 0, out=age)
            age *= np.float32(-1.0 / half_life_us)
            self._recency_cache = np.exp2(age)
            self._recency_key = key
        return self._recency_cache

    def _mask(self, q: RecallQuery) -> npt.NDArray[np.bool_] | None:
        n = self.size
        parts: list[npt.NDArray[np.bool_]] = []
        if q.kinds:
            parts.append(np.isin(self._kinds[:n], [int(k) for k in q.kinds]))
        if q.min_trust > 0:
            parts.append(self._trust[:n] >= np.float32(q.min_trust))
        if q.min_importance > 0:
            parts.append(self._importance[:n] >= np.float32(q.min_importance))
        if q.after_us is not None:
            parts.append(self._time[:n] >= q.after_us)
        if q.before_us is not None:
            parts.append(self._time[:n] < q.before_us)
        if not parts:
            return None
        mask = parts[0]
        for part in parts[1:]:
            mask &= part
        return mask


class IndexCache:
    """LRU of persona indexes, bounded by the total number of cached vectors."""

    def __init__(self, max_vectors: int) -> None:
        self._max = max_vectors
        self._items: OrderedDict[str, PersonaIndex] = OrderedDict()

    def get(self, agent: str, revision: int) -> PersonaIndex | None:
        index = self._items.get(agent)
        if index is None or index.revision != revision:
            return None
        self._items.move_to_end(agent)
        return index

    def put(self, agent: str, index: PersonaIndex) -> None:
        self._items[agent] = index
        self._items.move_to_end(agent)
        total = sum(i.size for i in self._items.values())
        while total > self._max and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            total -= evicted.size

    def drop(self, agent: str) -> None:
        self._items.pop(agent, None)

    def _follow(self, agent: str, revision: int) -> PersonaIndex | None:
        """The index if it is exactly one write behind revision (then it is advanced)."""
        index = self._items.get(agent)
        if index is None or index.revision != revision - 1:
            self.drop(agent)
            return None
        index.revision = revision
        return index

    def inserted(self, agent: str, rows: Sequence[MemoryRow], revision: int) -> None:
        index = self._follow(agent, revision)
        if index is None:
            return
        if index.size and any(r.dimension != index.dimension for r in rows):
            self.drop(agent)
            return
        index.append(rows)

    def updated(self, agent: str, row: MemoryRow, revision: int) -> None:
        index = self._follow(agent, revision)
        if index is not None:
            index.update(row)

    def removed(self, agent: str, memory_id: str, revision: int) -> None:
        index = self._follow(agent, revision)
        if index is not None:
            index.remove(memory_id)
