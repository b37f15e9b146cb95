"""Exact top-k recall: the thread-pool Scanner and the IndexCache of persona indexes."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from puppet_memory.persona_index import (
    HOUR_US,
    Hit,
    Part,
    PersonaIndex,
    RecallQuery,
    Scan,
    recency,
)
from puppet_memory.store import MemoryRow

__all__ = [
    "HOUR_US",
    "Hit",
    "IndexCache",
    "Part",
    "PersonaIndex",
    "RecallQuery",
    "Scan",
    "Scanner",
    "recency",
    "usable_cpus",
]


class Scanner:
    """Runs scans in slices on a small thread pool: a big index is searched on every core,
    and the event loop stays free meanwhile."""

    def __init__(
        self, workers: int | None = None, *, min_part: int = 8_192, inline: int = 4_096
    ) -> None:
        self.workers = workers or usable_cpus()
        self.min_part = min_part  # rows; a thread hop for fewer costs more than it saves
        self.inline = inline  # rows; smaller indexes are scanned on the event loop
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="recall")
        # The scan parallelises itself (slices on this pool), so numpy's BLAS stays on one thread,
        # process-wide: OpenBLAS's own threads under it made the recall p50 2-3x slower here.
        threadpool_limits(limits=1, user_api="blas")

    async def search(self, index: PersonaIndex, q: RecallQuery) -> list[Hit]:
        scan = index.scan(q)
        if scan is None:
            return []
        if scan.n < self.inline:
            return scan.finish([scan.part(0, scan.n)])
        count = max(1, min(self.workers, scan.n // self.min_part))
        bounds = [scan.n * i // count for i in range(count + 1)]
        loop = asyncio.get_running_loop()
        index.scans += 1
        try:
            parts = await asyncio.gather(
                *(
                    loop.run_in_executor(self._pool, scan.part, start, stop)
                    for start, stop in itertools.pairwise(bounds)
                )
            )
        finally:
            index.scans -= 1
        return scan.finish(parts)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def usable_cpus(cap: int = 4) -> int:
    """CPUs this process may run on, at most cap."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(count, cap))


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
        if index is not None and index.revision == revision:
            # A recall reloaded it between the write's commit and this call: it has the write.
            return None
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
        if index is None:
            return
        if index.scans:  # a remove moves a row under the running scan: reload later instead
            self.drop(agent)
        else:
            index.remove(memory_id)
