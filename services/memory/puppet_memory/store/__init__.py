"""The storage port: the MemoryStore Protocol, its rows and its errors (no protos, no grpc)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from puppet_memory.store.errors import (
    BudgetExhaustedError,
    EmbeddingMismatchError,
    MemoryNotFoundError,
    PersonaExistsError,
    PersonaNotFoundError,
    RelationshipNotFoundError,
    RequestIdReusedError,
    RevisionConflictError,
    StateTooLargeError,
    StoreError,
)
from puppet_memory.store.rows import (
    Channel,
    IndexSnapshot,
    Insert,
    Inserted,
    Kind,
    MemoryRow,
    Mood,
    PersonaRow,
    RelationshipRow,
    Vector,
)

__all__ = [
    "Admit",
    "BudgetExhaustedError",
    "Channel",
    "EmbeddingMismatchError",
    "IndexSnapshot",
    "Insert",
    "Inserted",
    "Kind",
    "MemoryChange",
    "MemoryNotFoundError",
    "MemoryRow",
    "MemoryStore",
    "Mood",
    "PersonaChange",
    "PersonaExistsError",
    "PersonaNotFoundError",
    "PersonaRow",
    "RelationshipChange",
    "RelationshipNotFoundError",
    "RelationshipRow",
    "RequestIdReusedError",
    "RevisionConflictError",
    "StateTooLargeError",
    "StoreError",
    "Vector",
]

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
