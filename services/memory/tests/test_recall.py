"""The recall index and its threaded scanner: exact results, and no torn reads under writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from puppet_memory.recall import IndexCache, PersonaIndex, RecallQuery, Scanner
from puppet_memory.store import Channel, IndexSnapshot, Kind, MemoryRow

DIM = 32
N = 3_000
NOW = 1_800_000_000_000_000


def unit_rows(n: int, seed: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    out: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def snapshot() -> IndexSnapshot:
    rng = np.random.default_rng(7)
    return IndexSnapshot(
        revision=1,
        ids=[f"m{i}" for i in range(N)],
        vectors=unit_rows(N, 1),
        kinds=rng.integers(1, 6, N).astype(np.int8),
        importance=rng.random(N, dtype=np.float32),
        trust=rng.random(N, dtype=np.float32),
        create_time_us=NOW - rng.integers(0, 10**12, N),
    )


def row(memory_id: str, vector: npt.NDArray[np.float32]) -> MemoryRow:
    return MemoryRow(
        agent="a1",
        memory_id=memory_id,
        kind=Kind.EVENT,
        content=memory_id,
        importance=0.5,
        valence=0.0,
        associations=(),
        metadata={},
        source="",
        channel=Channel.API,
        trust=0.5,
        create_time_us=NOW,
        update_time_us=NOW,
        embedding_model="m",
        vector=vector,
    )


@pytest.fixture
async def scanner() -> AsyncIterator[Scanner]:
    # Tiny parts, nothing inline: every search runs in several slices on the pool.
    scanning = Scanner(3, min_part=100, inline=0)
    yield scanning
    scanning.close()


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"kinds": frozenset({Kind.EVENT, Kind.CORE})},
        {"min_importance": 0.5, "min_trust": 0.25},
        {"after_us": NOW - 10**11, "w_similarity": 0.0, "w_importance": 1.0},
        {"kinds": frozenset({Kind.LONG_TERM})},  # matches nothing
    ],
)
async def test_sliced_scan_equals_the_one_pass_search(
    scanner: Scanner, filters: dict[str, Any]
) -> None:
    index = PersonaIndex(snapshot())
    for seed in range(5):
        q = RecallQuery(vector=unit_rows(1, 100 + seed)[0], top_k=25, now_us=NOW, **filters)
        assert await scanner.search(index, q) == index.search(q)


async def test_scans_under_concurrent_writes_never_mix_rows_up(scanner: Scanner) -> None:
    cache = IndexCache(10**6)
    index = PersonaIndex(snapshot())
    cache.put("a1", index)
    vectors = unit_rows(N, 1)
    targets = list(range(0, N, 97))

    async def top(i: int) -> str:
        q = RecallQuery(vector=vectors[i], top_k=3, now_us=NOW, w_recency=0.0, w_importance=0.0)
        return (await scanner.search(index, q))[0].memory_id

    scans = [asyncio.create_task(top(i)) for i in targets]
    await asyncio.sleep(0)  # every scan is now running on the pool
    assert index.scans > 0
    extra = unit_rows(500, 2)
    for j in range(0, 500, 50):  # appends (past the scanned rows, or into new arrays)
        cache.inserted("a1", [row(f"x{k}", extra[k]) for k in range(j, j + 50)], index.revision + 1)
    cache.updated("a1", row("m1", vectors[1]), index.revision + 1)
    assert cache.get("a1", index.revision) is index
    cache.removed("a1", "m2", index.revision + 1)  # would move a row under the scans
    assert cache.get("a1", index.revision) is None  # so the index is dropped instead
    assert await asyncio.gather(*scans) == [f"m{i}" for i in targets]
    assert index.scans == 0


async def test_appends_are_found_once_the_index_follows_them(scanner: Scanner) -> None:
    cache = IndexCache(10**6)
    index = PersonaIndex(snapshot())
    cache.put("a1", index)
    extra = unit_rows(400, 3)
    cache.inserted("a1", [row(f"x{k}", extra[k]) for k in range(400)], 2)
    cache.removed("a1", "m5", 3)  # no scan running: removed in place
    q = RecallQuery(vector=extra[399], top_k=1, now_us=NOW, w_recency=0.0, w_importance=0.0)
    assert [h.memory_id for h in await scanner.search(index, q)] == ["x399"]
    assert index.size == N + 400 - 1


def test_an_index_reloaded_after_a_write_is_not_dropped_by_that_write() -> None:
    cache = IndexCache(10**6)
    index = PersonaIndex(snapshot())  # loaded at revision 1, i.e. after write 1 committed
    cache.put("a1", index)
    cache.inserted("a1", [row("m0", unit_rows(1, 5)[0])], 1)  # write 1 reports in late
    assert cache.get("a1", 1) is index
    assert index.size == N  # m0 was already there, and is not added twice
    cache.inserted("a1", [row("x", unit_rows(1, 6)[0])], 3)  # a write it missed: reload
    assert cache.get("a1", 3) is None
