"""The rows a MemoryStore keeps: personas, memories, relationships, index snapshots."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


class Kind(enum.IntEnum):
    """Memory kinds; the values are stored, so never renumber them."""

    CORE = 1
    EVENT = 2
    INTERACTION = 3
    POST = 4
    GENERAL = 5
    LONG_TERM = 6


class Channel(enum.IntEnum):
    """How a memory arrived; the values are stored, so never renumber them."""

    API = 1
    POST = 2
    MENTION = 3
    EVENT = 4
    CONFIG = 5
    CONSOLIDATION = 6


@dataclass(frozen=True, slots=True)
class Mood:
    """Pleasure, arousal, dominance."""

    valence: float = 0.0
    arousal: float = 0.0
    dominance: float = 0.0


@dataclass(frozen=True, slots=True)
class PersonaRow:
    """A persona's state plus the counters the store keeps for it."""

    agent: str
    display_name: str = ""
    mood: Mood = Mood()
    baseline_mood: Mood = Mood()
    last_post_time_us: int | None = None
    last_mention_id: str = ""
    state: Mapping[str, str] = field(default_factory=dict)
    memory_budget: int = 0
    create_time_us: int = 0
    update_time_us: int = 0
    # Maintained by the store: callers' values are ignored on write.
    memory_count: int = 0
    core_count: int = 0
    embedding_model: str = ""
    embedding_dimension: int = 0
    memory_revision: int = 0


@dataclass(frozen=True, slots=True)
class MemoryRow:
    """One memory with its unit-length vector."""

    agent: str
    memory_id: str
    kind: Kind
    content: str
    importance: float
    valence: float
    associations: tuple[str, ...]
    metadata: Mapping[str, str]
    source: str
    channel: Channel
    trust: float
    create_time_us: int
    update_time_us: int
    embedding_model: str
    vector: Vector

    @property
    def dimension(self) -> int:
        return int(self.vector.shape[0])


@dataclass(frozen=True, slots=True)
class RelationshipRow:
    """How a persona relates to one counterparty."""

    agent: str
    counterparty: str
    sentiment: float = 0.0
    familiarity: float = 0.0
    trust: float = 0.0
    interaction_count: int = 0
    last_interaction_time_us: int | None = None
    notes: tuple[str, ...] = ()
    create_time_us: int = 0
    update_time_us: int = 0


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """Everything recall needs about a persona's memories, column-wise, at one revision."""

    revision: int
    ids: list[str]
    vectors: npt.NDArray[np.float32]
    kinds: npt.NDArray[np.int8]
    importance: npt.NDArray[np.float32]
    trust: npt.NDArray[np.float32]
    create_time_us: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Insert:
    """One memory to insert, with the idempotency key it was sent with.

    last_post_time_us, when set, becomes the persona's last_post_time in the insert's
    transaction if this row is new (the latest of them when several are).
    """

    row: MemoryRow
    request_id: str | None = None
    last_post_time_us: int | None = None


@dataclass(frozen=True, slots=True)
class Inserted:
    """Result of insert_memories: rows in request order and which of them are new."""

    rows: list[MemoryRow]
    created: list[bool]
    revision: int
    persona: PersonaRow
