"""The storage port: the MemoryStore Protocol, its rows and its errors (no protos, no grpc)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


class StoreError(Exception):
    """Base of the domain errors a store raises."""


class PersonaNotFoundError(StoreError):
    """The persona does not exist."""


class PersonaExistsError(StoreError):
    """create_persona for an id that is taken (by another request)."""


class EmbeddingMismatchError(StoreError):
    """A vector's model or dimension differs from the persona's index."""

    def __init__(self, expected: tuple[str, int], got: tuple[str, int]) -> None:
        super().__init__(f"persona index is {expected}, vector is {got}")
        self.expected = expected
        self.got = got


class RequestIdReusedError(StoreError):
    """An idempotency key already used for a different kind of call."""

    def __init__(self, request_id: str, op: str) -> None:
        super().__init__(f"request_id {request_id!r} was used for {op}")
        self.request_id = request_id
        self.op = op


class RevisionConflictError(StoreError):
    """The persona's memories changed between read and write."""


PersonaChange = Callable[[PersonaRow], PersonaRow]
MemoryChange = Callable[[MemoryRow], MemoryRow]
RelationshipChange = Callable[[RelationshipRow], RelationshipRow]
Admit = Callable[[PersonaRow], None]


class MemoryStore(Protocol):
    """Persistence for personas, memories and relationships.

    Every write that touches memories bumps the persona's memory_revision by exactly one and
    returns the new value, so an in-RAM index can follow along or notice it must reload. Every
    multi-row write is atomic.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        """Insert; the creating request_id repeated returns the row. Raises PersonaExistsError."""
        ...

    async def get_persona(self, agent: str) -> PersonaRow | None: ...

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]: ...

    async def delete_persona(self, agent: str) -> bool:
        """Delete the persona with its memories, relationships and request keys."""
        ...

    async def mutate_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> tuple[PersonaRow, bool]:
        """Atomic read-change-write; (row, applied). A known request_id returns (row, False)."""
        ...

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        """Insert all or nothing; rows whose request_id is known come back as stored.

        admit, if given, is called first inside the transaction with the persona as it stands;
        whatever it raises aborts the insert. The new rows' latest last_post_time_us (see Insert)
        is set on the persona in the same transaction, with its update_time_us.
        """
        ...

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        """The rows that exist, in no particular order."""
        ...

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
    ) -> list[MemoryRow]:
        """Newest first by (create_time_us, memory_id), strictly before the cursor."""
        ...

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        """Atomic read-change-write of one memory; (row, revision) or None if missing."""
        ...

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        """The new revision, or None if the memory did not exist."""
        ...

    async def load_index(self, agent: str) -> IndexSnapshot | None: ...

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        """Delete and insert at once if the revision still matches, else RevisionConflictError."""
        ...

    async def set_vectors(
        self,
        agent: str,
        *,
        expected_revision: int,
        model: str,
        vectors: Mapping[str, Vector],
    ) -> int:
        """Swap every vector and the persona's model in one step; raise RevisionConflictError."""
        ...

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        """(op, result) recorded for an idempotency key."""
        ...

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        """Remember a finished call's result for its idempotency key."""
        ...

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow | None: ...

    async def list_relationships(
        self, agent: str, after: str, limit: int
    ) -> list[RelationshipRow]: ...

    async def mutate_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> tuple[RelationshipRow, bool]:
        """Atomic upsert (default row when missing); a known request_id returns (row, False)."""
        ...


class MemoryNotFoundError(StoreError):
    """The memory does not exist (the persona does)."""


class RelationshipNotFoundError(StoreError):
    """The relationship does not exist (the persona does)."""


class BudgetExhaustedError(StoreError):
    """Core memories alone would fill the persona's budget."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"core memories fill the budget of {budget}")
        self.budget = budget


class StateTooLargeError(StoreError):
    """An update would leave the persona's state map with too many entries."""
