"""Which memories consolidation removes, and the summary it writes for them (pure functions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from puppet_memory.recall import HOUR_US, recency
from puppet_memory.store import Channel, Kind, MemoryRow

MAX_CONTENT = 8_000
MAX_ASSOCIATIONS = 32
PRUNE_BELOW = 0.2
"""Removed memories less important than this are dropped instead of summarised."""
VALUE_HALF_LIFE_US = 72 * HOUR_US
AUTO_TARGET = 0.9
"""Automatic consolidation goes down to this share of the budget, so it does not run per write."""


def choose(
    ids: Sequence[str],
    kinds: npt.NDArray[np.int8],
    importance: npt.NDArray[np.float32],
    create_time_us: npt.NDArray[np.int64],
    *,
    target: int,
    now_us: int,
) -> list[str]:
    """The ids to remove to get down to target: lowest value first, then oldest; never core."""
    excess = len(ids) - target
    if excess <= 0:
        return []
    value = 0.6 * importance + 0.4 * recency(create_time_us, now_us, VALUE_HALF_LIFE_US)
    candidates = np.flatnonzero(kinds != int(Kind.CORE))
    order = candidates[np.lexsort((create_time_us[candidates], value[candidates]))]
    chosen = order[:excess]
    if (importance[chosen] >= PRUNE_BELOW).any() and order.size > excess:
        chosen = order[: excess + 1]  # the summary takes a slot
    return [ids[i] for i in chosen]


def summarise(agent: str, merged: Sequence[MemoryRow], now_us: int) -> MemoryRow:
    """One LONG_TERM memory standing for merged (oldest first), with their mean direction."""
    ordered = sorted(merged, key=lambda m: (m.create_time_us, m.memory_id))
    mean = np.mean(np.stack([m.vector for m in ordered]), axis=0).astype(np.float32)
    norm = float(np.linalg.norm(mean))
    vector = mean / norm if norm > 0 else ordered[-1].vector
    associations: list[str] = []
    for m in ordered:
        associations += [a for a in m.associations if a not in associations]
    return MemoryRow(
        agent=agent,
        memory_id=uuid.uuid4().hex,
        kind=Kind.LONG_TERM,
        content="\n".join(m.content for m in ordered)[:MAX_CONTENT],
        importance=max(m.importance for m in ordered),
        valence=float(np.mean([m.valence for m in ordered])),
        associations=tuple(associations[:MAX_ASSOCIATIONS]),
        metadata={"consolidated": "true", "merged_count": str(len(ordered))},
        source="system",
        channel=Channel.CONSOLIDATION,
        trust=min(m.trust for m in ordered),
        create_time_us=ordered[-1].create_time_us,
        update_time_us=now_us,
        embedding_model=ordered[-1].embedding_model,
        vector=vector.astype(np.float32),
    )
