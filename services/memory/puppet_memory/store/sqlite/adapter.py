"""SQLite adapter (the embedded default): WAL, one thread per connection, float32 BLOBs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from puppet_runtime.sqlite import ThreadedConnection, transaction

from puppet_memory.store import (
    Admit,
    IndexSnapshot,
    Insert,
    Inserted,
    Kind,
    MemoryChange,
    MemoryRow,
    PersonaChange,
    PersonaRow,
    RelationshipChange,
    RelationshipRow,
    Vector,
)
from puppet_memory.store.sqlite import memories, personas
from puppet_memory.store.sqlite.rows import SCHEMA, get_memories, one, persona_or_none

_READER_MMAP = 1 << 30


class SqliteStore:
    """One file; a writer and a reader connection (WAL lets both run), each on its own thread.

    Every call is one function run on its connection's thread: a write is one transaction in
    one hop, and the writer's single thread serialises the writes.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer = ThreadedConnection("sqlite-writer")
        self._reader = ThreadedConnection("sqlite-reader")

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._writer.open(
            self._path,
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=5000",
        )
        await self._writer.run(lambda db: db.executescript(SCHEMA))
        # Recall fetches a few random rows of a file far bigger than SQLite's page cache: reading
        # them through a memory map saves a read() and a copy per page.
        await self._reader.open(
            self._path, "PRAGMA busy_timeout=5000", f"PRAGMA mmap_size={_READER_MMAP}"
        )

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    # personas

    async def create_persona(self, row: PersonaRow, request_id: str | None) -> PersonaRow:
        return await self._writer.run(transaction, personas.create_persona, row, request_id)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        return await self._reader.run(persona_or_none, agent)

    async def list_personas(self, after: str, limit: int) -> list[PersonaRow]:
        return await self._reader.run(personas.list_personas, after, limit)

    async def delete_persona(self, agent: str) -> bool:
        return await self._writer.run(transaction, personas.delete_persona, agent)

    async def mutate_persona(
        self, agent: str, change: PersonaChange, *, op: str, request_id: str | None
    ) -> tuple[PersonaRow, bool]:
        return await self._writer.run(
            transaction, personas.mutate_persona, agent, change, op, request_id
        )

    # memories

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        return await self._writer.run(transaction, memories.insert, agent, inserts, admit)

    async def get_memories(self, agent: str, memory_ids: Sequence[str]) -> list[MemoryRow]:
        return await self._reader.run(get_memories, agent, memory_ids)

    async def list_memories(
        self, agent: str, kinds: frozenset[Kind], before: tuple[int, str] | None, limit: int
    ) -> list[MemoryRow]:
        return await self._reader.run(memories.list_memories, agent, kinds, before, limit)

    async def update_memory(
        self, agent: str, memory_id: str, change: MemoryChange
    ) -> tuple[MemoryRow, int] | None:
        return await self._writer.run(transaction, memories.update_memory, agent, memory_id, change)

    async def delete_memory(self, agent: str, memory_id: str) -> int | None:
        return await self._writer.run(transaction, memories.delete_memory, agent, memory_id)

    async def load_index(self, agent: str) -> IndexSnapshot | None:
        return await self._reader.run(memories.load_index, agent)

    async def replace_memories(
        self,
        agent: str,
        *,
        expected_revision: int,
        delete_ids: Sequence[str],
        insert: Sequence[MemoryRow],
    ) -> int:
        return await self._writer.run(
            transaction, memories.replace_memories, agent, expected_revision, delete_ids, insert
        )

    async def set_vectors(
        self, agent: str, *, expected_revision: int, model: str, vectors: Mapping[str, Vector]
    ) -> int:
        return await self._writer.run(
            transaction, memories.set_vectors, agent, expected_revision, model, vectors
        )

    async def find_request(self, agent: str, request_id: str) -> tuple[str, str] | None:
        row = await self._reader.run(
            one,
            "SELECT op, result FROM requests WHERE agent = ? AND request_id = ?",
            agent,
            request_id,
        )
        return None if row is None else (row[0], row[1])

    async def record_request(self, agent: str, request_id: str, op: str, result: str) -> None:
        await self._writer.run(transaction, personas.record_request, agent, request_id, op, result)

    # relationships

    async def get_relationship(self, agent: str, counterparty: str) -> RelationshipRow | None:
        return await self._reader.run(personas.relationship, agent, counterparty)

    async def list_relationships(self, agent: str, after: str, limit: int) -> list[RelationshipRow]:
        return await self._reader.run(personas.list_relationships, agent, after, limit)

    async def mutate_relationship(
        self,
        agent: str,
        counterparty: str,
        change: RelationshipChange,
        *,
        op: str,
        request_id: str | None,
    ) -> tuple[RelationshipRow, bool]:
        return await self._writer.run(
            transaction, personas.mutate_relationship, agent, counterparty, change, op, request_id
        )
