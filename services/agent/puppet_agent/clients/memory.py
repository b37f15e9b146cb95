"""MemoryService client: persona state, memories, relationships."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2
from puppet.memory.v1 import memory_pb2, memory_service_pb2, persona_pb2, relationship_pb2
from puppet_runtime import NotFound, ServiceError

from puppet_agent.clients.base import calling, ts

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub


FEW_MISSES = 8
"""Up to this many uncached personas are read one by one; more, with ListPersonas pages."""


@dataclass
class MemoryClient:
    """MemoryService: persona state, memories, relationships.

    Persona state (mood, last post, cursor, state map) is read through a cache: an entry is
    served for at most state_ttl_s after it was read, and this client's own writes replace it
    with what memory answered (a post memory created with last_post_time sets that field of the
    entry, which keeps its read time). A recall refreshes the entry with the state it returns.
    So what a caller sees is this replica's latest write, or another writer's (another replica,
    an operator calling memory directly) at most state_ttl_s late. 0 turns the cache off.
    """

    stub: MemoryServiceAsyncStub
    state_ttl_s: float = 0.0
    _states: dict[str, tuple[float, persona_pb2.Persona]] = field(default_factory=dict)
    _writes: dict[str, int] = field(default_factory=dict)
    """Per persona, how many writes of this client touched its state (or dropped it): a
    recall's state, read before it answered, is cached only if no write came meanwhile."""

    def _keep(self, agent_id: str, persona: persona_pb2.Persona) -> persona_pb2.Persona:
        if self.state_ttl_s > 0:
            self._states[agent_id] = (time.monotonic(), persona)
        return persona

    def _wrote(self, agent_id: str, persona: persona_pb2.Persona | None) -> None:
        """A write's answer replaces the cached state (None drops it)."""
        self._writes[agent_id] = self._writes.get(agent_id, 0) + 1
        if persona is None:
            self._states.pop(agent_id, None)
        else:
            self._keep(agent_id, persona)

    def _cached(self, agent_id: str) -> persona_pb2.Persona | None:
        found = self._states.get(agent_id)
        if found is None:
            return None
        if time.monotonic() - found[0] >= self.state_ttl_s:
            del self._states[agent_id]
            return None
        return found[1]

    def cached_state(self, agent_id: str) -> persona_pb2.Persona | None:
        """The persona's cached state while fresh enough (see the class); never calls memory."""
        return self._cached(agent_id)

    def forget(self, agent_id: str) -> None:
        """Drop the persona's cached state (its next read asks memory)."""
        self._wrote(agent_id, None)

    async def ensure_persona(self, agent_id: str, display_name: str) -> persona_pb2.Persona:
        request = memory_service_pb2.CreatePersonaRequest(
            persona_id=agent_id,
            persona=persona_pb2.Persona(
                display_name=display_name[:128],
                baseline_mood=persona_pb2.Mood(valence=0, arousal=0, dominance=0.5),
            ),
            allow_existing=True,
        )
        self.forget(agent_id)
        with calling("memory", agent_id):
            return (await self.stub.CreatePersona(request)).persona

    async def get_persona(self, agent_id: str) -> persona_pb2.Persona:
        """The persona's state, from the cache while fresh enough (see the class)."""
        cached = self._cached(agent_id)
        if cached is not None:
            return cached
        request = memory_service_pb2.GetPersonaRequest(name=f"agents/{agent_id}")
        with calling("memory", agent_id):
            return self._keep(agent_id, (await self.stub.GetPersona(request)).persona)

    async def get_personas(self, agent_ids: Iterable[str]) -> dict[str, persona_pb2.Persona]:
        """The states of many personas (those memory has); few calls whatever their number."""
        out: dict[str, persona_pb2.Persona] = {}
        missing: set[str] = set()
        for agent_id in agent_ids:
            cached = self._cached(agent_id)
            if cached is None:
                missing.add(agent_id)
            else:
                out[agent_id] = cached
        if not missing:
            return out
        if len(missing) <= FEW_MISSES:
            found = await asyncio.gather(*(self._maybe(a) for a in missing))
            out.update((a, p) for a, p in zip(missing, found, strict=True) if p is not None)
            return out
        token = ""
        with calling("memory"):
            while missing:
                page = await self.stub.ListPersonas(
                    memory_service_pb2.ListPersonasRequest(page_size=500, page_token=token)
                )
                for persona in page.personas:
                    agent_id = persona.name.removeprefix("agents/")
                    self._keep(agent_id, persona)
                    if agent_id in missing:
                        missing.discard(agent_id)
                        out[agent_id] = persona
                token = page.next_page_token
                if not token:
                    break
        return out

    async def _maybe(self, agent_id: str) -> persona_pb2.Persona | None:
        try:
            return await self.get_persona(agent_id)
        except NotFound:
            return None

    async def delete_persona(self, agent_id: str) -> None:
        request = memory_service_pb2.DeletePersonaRequest(
            name=f"agents/{agent_id}", allow_missing=True
        )
        self.forget(agent_id)
        with calling("memory", agent_id):
            await self.stub.DeletePersona(request)

    async def set_last_mention(self, agent_id: str, post_id: str) -> None:
        persona = persona_pb2.Persona(name=f"agents/{agent_id}", last_mention_id=post_id[:64])
        await self._update(agent_id, persona, ["last_mention_id"])

    async def set_state(self, agent_id: str, key: str, value: str | None) -> None:
        state = {} if value is None else {key: value}
        persona = persona_pb2.Persona(name=f"agents/{agent_id}", state=state)
        await self._update(agent_id, persona, [f"state.{key}"])

    async def _update(self, agent_id: str, persona: persona_pb2.Persona, paths: list[str]) -> None:
        request = memory_service_pb2.UpdatePersonaStateRequest(
            persona=persona, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        try:
            with calling("memory", agent_id):
                response = await self.stub.UpdatePersonaState(request)
        except BaseException:
            self.forget(agent_id)
            raise
        self._wrote(agent_id, response.persona)

    async def shift_mood(
        self, agent_id: str, dv: float, da: float, dd: float, request_id: str = ""
    ) -> persona_pb2.Persona:
        request = memory_service_pb2.ShiftMoodRequest(
            name=f"agents/{agent_id}",
            valence_delta=max(-2.0, min(2.0, dv)),
            arousal_delta=max(-1.0, min(1.0, da)),
            dominance_delta=max(-1.0, min(1.0, dd)),
            request_id=request_id,
        )
        try:
            with calling("memory", agent_id):
                persona = (await self.stub.ShiftMood(request)).persona
        except BaseException:
            self.forget(agent_id)
            raise
        self._wrote(agent_id, persona)
        return persona

    async def create_memory(
        self,
        agent_id: str,
        memory: memory_pb2.Memory,
        request_id: str = "",
        *,
        last_post_time: datetime | None = None,
    ) -> memory_pb2.Memory:
        """Store a memory; with last_post_time, the persona's last post time in the same
        transaction (a post's memory and its time land together or not at all)."""
        request = memory_service_pb2.CreateMemoryRequest(
            parent=f"agents/{agent_id}",
            memory=memory,
            request_id=request_id,
            last_post_time=ts(last_post_time),
        )
        if last_post_time is None:
            with calling("memory", agent_id):
                return (await self.stub.CreateMemory(request)).memory
        try:
            with calling("memory", agent_id):
                created = (await self.stub.CreateMemory(request)).memory
        except BaseException:
            self.forget(agent_id)
            raise
        self._writes[agent_id] = self._writes.get(agent_id, 0) + 1
        found = self._states.get(agent_id)
        if found is not None:
            state = persona_pb2.Persona()
            state.CopyFrom(found[1])
            state.last_post_time.CopyFrom(request.last_post_time)
            self._states[agent_id] = (found[0], state)
        return created

    async def seed(
        self, agent_id: str, memories: Sequence[memory_pb2.Memory], request_id: str
    ) -> None:
        if not memories:
            return
        request = memory_service_pb2.BatchCreateMemoriesRequest(
            parent=f"agents/{agent_id}",
            requests=[memory_service_pb2.CreateMemoryRequest(memory=m) for m in memories],
            request_id=request_id,
        )
        with calling("memory", agent_id):
            await self.stub.BatchCreateMemories(request)

    async def list_memories(
        self, agent_id: str, kinds: Sequence[memory_pb2.MemoryKind.ValueType] = (), limit: int = 500
    ) -> list[memory_pb2.Memory]:
        """Newest first, up to limit."""
        out: list[memory_pb2.Memory] = []
        token = ""
        with calling("memory", agent_id):
            while len(out) < limit:
                page = await self.stub.ListMemories(
                    memory_service_pb2.ListMemoriesRequest(
                        parent=f"agents/{agent_id}", page_size=500, page_token=token, kinds=kinds
                    )
                )
                out.extend(page.memories)
                token = page.next_page_token
                if not token:
                    break
        return out[:limit]

    async def recall_with_state(
        self, agent_id: str, query: str, top_k: int
    ) -> tuple[list[memory_pb2.Memory], persona_pb2.Persona | None]:
        """The top_k memories matching query and the persona's state as memory read it for the
        recall, in one call (which refreshes the cached state). Without a recall to make (no
        query, top_k 0) the state is read as get_persona does; None when memory lacks it."""
        if top_k <= 0 or not query.strip():
            try:
                return [], await self.get_persona(agent_id)
            except NotFound:
                return [], None
        request = memory_service_pb2.RecallMemoriesRequest(
            parent=f"agents/{agent_id}", text=query[:8_000], top_k=top_k
        )
        writes = self._writes.get(agent_id, 0)
        with calling("memory", agent_id):
            response = await self.stub.RecallMemories(request)
        memories = [r.memory for r in response.results]
        if not response.HasField("persona"):  # a memory service older than the field
            try:
                return memories, await self.get_persona(agent_id)
            except NotFound:
                return memories, None
        if self._writes.get(agent_id, 0) == writes:
            self._keep(agent_id, response.persona)
        return memories, response.persona

    async def relationships(
        self, agent_id: str, limit: int = 1_000
    ) -> list[relationship_pb2.Relationship]:
        out: list[relationship_pb2.Relationship] = []
        token = ""
        with calling("memory", agent_id):
            while len(out) < limit:
                page = await self.stub.ListRelationships(
                    memory_service_pb2.ListRelationshipsRequest(
                        parent=f"agents/{agent_id}", page_size=500, page_token=token
                    )
                )
                out.extend(page.relationships)
                token = page.next_page_token
                if not token:
                    break
        return out[:limit]

    async def relationship(
        self, agent_id: str, counterparty: str
    ) -> relationship_pb2.Relationship | None:
        request = memory_service_pb2.GetRelationshipRequest(
            name=f"agents/{agent_id}/relationships/{counterparty.lower()}"
        )
        try:
            with calling("memory", agent_id):
                return (await self.stub.GetRelationship(request)).relationship
        except ServiceError:
            raise
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def set_relationship(
        self, agent_id: str, counterparty: str, relationship: relationship_pb2.Relationship
    ) -> None:
        relationship.name = f"agents/{agent_id}/relationships/{counterparty.lower()}"
        request = memory_service_pb2.UpdateRelationshipRequest(
            relationship=relationship,
            update_mask=field_mask_pb2.FieldMask(
                paths=["sentiment", "familiarity", "trust", "notes"]
            ),
        )
        with calling("memory", agent_id):
            await self.stub.UpdateRelationship(request)

    async def record_interaction(
        self,
        agent_id: str,
        counterparty: str,
        *,
        sentiment: float = 0.0,
        familiarity: float = 0.05,
        trust: float = 0.0,
        note: str = "",
        request_id: str = "",
    ) -> None:
        request = memory_service_pb2.RecordInteractionRequest(
            name=f"agents/{agent_id}/relationships/{counterparty.lower()}",
            sentiment_delta=sentiment,
            familiarity_delta=familiarity,
            trust_delta=trust,
            note=note[:500],
            request_id=request_id,
        )
        with calling("memory", agent_id):
            await self.stub.RecordInteraction(request)
