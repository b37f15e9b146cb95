"""Per-persona in-RAM indexes that follow the store's revisions, and the exact top-k scan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
        self.scans = 0  # scans running on other threads: rows must not move meanwhile

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

    def scan(self, q: RecallQuery) -> Scan | None:
        """A search over the rows as they are now; None if there are none."""
        n = self.size
        if n == 0:
            return None
        key = (q.now_us // 1_000_000, q.half_life_us, n, self.revision)
        return Scan(
            index=self,
            query=q,
            n=n,
            ids=self._ids,
            vectors=self._vectors,
            importance=self._importance,
            time=self._time,
            mask=self._mask(q),
            recency=self._recency_cache if self._recency_key == key else None,
            recency_key=key,
        )

    def search(self, q: RecallQuery) -> list[Hit]:
        """Exact top-k on the calling thread."""
        scan = self.scan(q)
        return [] if scan is None else scan.finish([scan.part(0, scan.n)])

    def keep_recency(
        self, key: tuple[int, int, int, int], recency: npt.NDArray[np.float32]
    ) -> None:
        """Recency of every row, reused for up to a second (invisible at a 1 s half-life floor)."""
        self._recency_key, self._recency_cache = key, recency

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


@dataclass(frozen=True, slots=True)
class Part:
    """The best rows of one slice of a scan: positions and the parts of their scores."""

    rows: npt.NDArray[np.intp]
    score: npt.NDArray[np.float32]
    similarity: npt.NDArray[np.float32]
    recency: npt.NDArray[np.float32]
    importance: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Scan:
    """One search over rows [0, n) of an index, in slices that may run on any thread.

    It holds the index's arrays as they were when it began: appends write past n or into new
    arrays, so they never disturb it, and rows move (swap-remove) only while no scan runs.
    """

    index: PersonaIndex
    query: RecallQuery
    n: int
    ids: list[str]
    vectors: npt.NDArray[np.float32]
    importance: npt.NDArray[np.float32]
    time: npt.NDArray[np.int64]
    mask: npt.NDArray[np.bool_] | None
    recency: npt.NDArray[np.float32] | None
    recency_key: tuple[int, int, int, int]
    fresh: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if self.recency is None:  # each part fills its slice of a new recency column
            object.__setattr__(self, "fresh", np.empty(self.n, np.float32))

    def part(self, start: int, stop: int) -> Part:
        """Score rows [start, stop) and keep their top k; numpy releases the GIL throughout."""
        q = self.query
        # Memory-bandwidth bound: one pass over the vectors, then cheap in-place arithmetic.
        sim = np.dot(self.vectors[start:stop], q.vector)
        rec = self._recency(start, stop)
        imp = self.importance[start:stop]
        score = sim * np.float32(q.w_similarity)
        score += np.float32(q.w_recency) * rec
        score += np.float32(q.w_importance) * imp
        rows = None if self.mask is None else np.flatnonzero(self.mask[start:stop])
        size = stop - start if rows is None else rows.size
        k = min(q.top_k, size)
        if k < size:
            top = np.argpartition(-(score if rows is None else score[rows]), k - 1)[:k]
            rows = top if rows is None else rows[top]
        elif rows is None:
            rows = np.arange(size)
        return Part(rows + start, score[rows], sim[rows], rec[rows], imp[rows])

    def _recency(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        if self.recency is not None:
            return self.recency[start:stop]
        out = self.fresh[start:stop]
        out[:] = self.query.now_us - self.time[start:stop]  # int64 ages, then float32
        np.maximum(out, 0, out=out)
        out *= np.float32(-1.0 / self.query.half_life_us)
        return np.exp2(out, out=out)

    def finish(self, parts: Sequence[Part]) -> list[Hit]:
        """Merge the parts' top k; on the event loop (it reads the ids)."""
        if self.recency is None:
            self.index.keep_recency(self.recency_key, self.fresh)
        score = np.concatenate([p.score for p in parts])
        best = np.argsort(-score, kind="stable")[: self.query.top_k]
        rows = np.concatenate([p.rows for p in parts])[best]
        sim = np.concatenate([p.similarity for p in parts])[best]
        rec = np.concatenate([p.recency for p in parts])[best]
        imp = np.concatenate([p.importance for p in parts])[best]
        return [
            Hit(self.ids[r], float(s), float(m), float(c), float(i))
            for r, s, m, c, i in zip(rows.tolist(), score[best], sim, rec, imp, strict=True)
        ]
