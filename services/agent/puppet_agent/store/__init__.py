"""The orchestrator's own data: persona files, run state, events, posts, idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AgentStore", "EventRecord", "PersonaRecord", "PostRecord", "RequestRecord"]


@dataclass(frozen=True)
class PersonaRecord:
    """A persona file as stored (secrets removed) plus its run state."""

    id: str
    config: dict[str, Any]
    seq: int
    """Creation order: ListAgents order."""
    version: int
    """1 on creation, +1 on every replacement."""
    paused: bool
    pause_time: float | None
    create_time: float
    update_time: float


@dataclass(frozen=True)
class EventRecord:
    """An injected or generated event; processed_at is None until every handler finished."""

    id: str
    type: str
    data: Any
    targets: tuple[str, ...]
    priority: str
    create_time: float
    execute_after: float | None
    processed_at: float | None = None
    seq: int = 0


@dataclass(frozen=True)
class PostRecord:
    """A post a persona composed and handed to the social outbox."""

    id: str
    agent: str
    kind: str
    """post, reply, quote, thread or trade."""
    text: str
    target_post: str
    social_post: str
    outbox_item: str
    delivery: str
    """queued, scheduled, needs_review, sent, rejected or failed."""
    scheduled_time: float | None
    create_time: float
    trigger: str
    seq: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """The first result of a call made with a request_id (AIP-155)."""

    scope: str
    request_id: str
    fingerprint: str
    """What the call was (method and arguments); a different one is REQUEST_ID_REUSED."""
    payload: str
    """The serialised response."""


class AgentStore(Protocol):
    """Storage port. Adapters never raise driver exceptions for absent rows: they return None."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def upsert_persona(
        self, persona_id: str, config: dict[str, Any], now: float
    ) -> PersonaRecord:
        """Create (next seq, version 1, running) or replace the file (keeps seq and run state)."""
        ...

    async def get_persona(self, persona_id: str) -> PersonaRecord | None: ...
    async def list_personas(
        self, *, after_seq: int = 0, limit: int = 1_000, paused: bool | None = None
    ) -> list[PersonaRecord]: ...
    async def count_personas(self) -> int: ...
    async def delete_persona(self, persona_id: str) -> bool: ...
    async def set_paused(self, persona_id: str, paused: bool, now: float) -> PersonaRecord | None:
        """Pause (stamping pause_time once) or resume; None when the persona does not exist."""
        ...

    async def add_event(self, event: EventRecord) -> EventRecord: ...
    async def mark_processed(self, event_id: str, at: float) -> None: ...
    async def pending_events(self) -> list[EventRecord]:
        """Events not processed yet, in creation order."""
        ...

    async def list_processed(self, *, before_seq: int | None, limit: int) -> list[EventRecord]:
        """Processed events, newest first."""
        ...

    async def add_post(self, post: PostRecord) -> PostRecord: ...
    async def update_post(
        self, post_id: str, *, delivery: str, social_post: str, scheduled_time: float | None
    ) -> None: ...
    async def list_posts(
        self, agent: str, *, delivery: str | None, before_seq: int | None, limit: int
    ) -> list[PostRecord]:
        """A persona's posts, newest first."""
        ...

    async def recall_request(self, scope: str, request_id: str) -> RequestRecord | None: ...
    async def remember_request(self, record: RequestRecord) -> RequestRecord:
        """Store the record unless one exists for (scope, request_id); returns the stored one."""
        ...
