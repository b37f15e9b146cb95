"""MemoryServicer: validate the request, call the domain, answer with protos."""

from __future__ import annotations

from typing import Any

from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_runtime import Context, paging

from puppet_memory import convert, parse
from puppet_memory.domain import MemoryDomain
from puppet_memory.errors import translated
from puppet_memory.store import (
    Mood,
)
from puppet_memory.validation import COUNTERPARTY, MEMORY_ID, Checks

MAX_BATCH = 1_000


class MemoryServicer(rpc.MemoryServiceServicer):
    """Thin: every method is validate, delegate, convert."""

    def __init__(self, domain: MemoryDomain) -> None:
        self._d = domain

    def _persona(self, row: Any) -> Any:
        return convert.persona(row, self._d.default_budget)

    # memories

    async def GetMemory(
        self, request: pb.GetMemoryRequest, context: Context
    ) -> pb.GetMemoryResponse:
        c = Checks()
        agent, memory_id = c.child_name("name", request.name, "memories", MEMORY_ID)
        c.done()
        with translated(request.name):
            row = await self._d.get_memory(agent, memory_id)
        return pb.GetMemoryResponse(memory=convert.memory(row))

    async def ListMemories(
        self, request: pb.ListMemoriesRequest, context: Context
    ) -> pb.ListMemoriesResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        size = c.page_size("page_size", request.page_size)
        kinds = c.kinds("kinds", request.kinds)
        query = f"memories|{request.parent}|{sorted(int(k) for k in kinds)}"
        cursor = c.cursor(query, request.page_token, list)
        c.done()
        with translated(request.parent):
            rows = await self._d.list_memories(
                agent, kinds, None if cursor is None else (cursor[0], cursor[1]), size + 1
            )
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = paging.encode(query, [rows[-1].create_time_us, rows[-1].memory_id])
        return pb.ListMemoriesResponse(
            memories=[convert.memory(r) for r in rows], next_page_token=token
        )

    async def CreateMemory(
        self, request: pb.CreateMemoryRequest, context: Context
    ) -> pb.CreateMemoryResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        draft = parse.draft(c, request, "", None)
        c.done()
        with translated(request.parent):
            rows = await self._d.create_memories(agent, [draft])
        return pb.CreateMemoryResponse(memory=convert.memory(rows[0]))

    async def UpdateMemory(
        self, request: pb.UpdateMemoryRequest, context: Context
    ) -> pb.UpdateMemoryResponse:
        c = Checks()
        name = request.memory.name
        agent, memory_id = c.child_name("memory.name", name, "memories", MEMORY_ID)
        paths = c.mask("update_mask", request.update_mask, parse.MEMORY_PATHS)
        change = parse.memory_change(c, request.memory, paths)
        c.request_id("request_id", request.request_id)
        c.done()
        with translated(name):
            row = await self._d.update_memory(agent, memory_id, change)
        return pb.UpdateMemoryResponse(memory=convert.memory(row))

    async def DeleteMemory(
        self, request: pb.DeleteMemoryRequest, context: Context
    ) -> pb.DeleteMemoryResponse:
        c = Checks()
        agent, memory_id = c.child_name("name", request.name, "memories", MEMORY_ID)
        c.request_id("request_id", request.request_id)
        c.done()
        with translated(request.name):
            await self._d.delete_memory(agent, memory_id, allow_missing=request.allow_missing)
        return pb.DeleteMemoryResponse(name=request.name)

    async def BatchCreateMemories(
        self, request: pb.BatchCreateMemoriesRequest, context: Context
    ) -> pb.BatchCreateMemoriesResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        batch_key = c.request_id("request_id", request.request_id)
        if not 1 <= len(request.requests) <= MAX_BATCH:
            c.fail("requests", f"must have 1-{MAX_BATCH} items, got {len(request.requests)}")
        drafts = []
        for i, item in enumerate(request.requests[:MAX_BATCH]):
            if item.parent not in ("", request.parent):
                c.fail(f"requests[{i}].parent", "must be empty or equal parent")
            key = f"{batch_key}/{i}" if batch_key else None
            drafts.append(parse.draft(c, item, f"requests[{i}].", key))
        c.done()
        with translated(request.parent):
            rows = await self._d.create_memories(agent, drafts)
        return pb.BatchCreateMemoriesResponse(memories=[convert.memory(r) for r in rows])

    async def RecallMemories(
        self, request: pb.RecallMemoriesRequest, context: Context
    ) -> pb.RecallMemoriesResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        query, params = parse.recall(c, request)
        c.done()
        with translated(request.parent):
            hits, persona = await self._d.recall(agent, query, params)
        return pb.RecallMemoriesResponse(
            results=[convert.scored(h, r) for h, r in hits],
            embedding_model=persona.embedding_model,
            persona=self._persona(persona),
        )

    async def ReembedMemories(
        self, request: pb.ReembedMemoriesRequest, context: Context
    ) -> pb.ReembedMemoriesResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(request.parent):
            count, model, dim = await self._d.reembed(agent, key)
        return pb.ReembedMemoriesResponse(
            reembedded_count=count, embedding_model=model, embedding_dimension=dim
        )

    async def ConsolidateMemories(
        self, request: pb.ConsolidateMemoriesRequest, context: Context
    ) -> pb.ConsolidateMemoriesResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        key = c.request_id("request_id", request.request_id)
        target = parse.budget(c, "target_count", request.target_count)
        c.done()
        with translated(request.parent):
            done, summary = await self._d.consolidate(agent, target or None, key)
        return pb.ConsolidateMemoriesResponse(
            merged_count=done.merged_count,
            pruned_count=done.pruned_count,
            summary=None if summary is None else convert.memory(summary),
            memory_count=done.memory_count,
        )

    # personas

    async def CreatePersona(
        self, request: pb.CreatePersonaRequest, context: Context
    ) -> pb.CreatePersonaResponse:
        c = Checks()
        agent = c.agent_name("persona_id", f"agents/{request.persona_id}")
        row = parse.persona_row(c, agent, request.persona)
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(f"agents/{agent}"):
            row = await self._d.create_persona(row, key, allow_existing=request.allow_existing)
        return pb.CreatePersonaResponse(persona=self._persona(row))

    async def GetPersona(
        self, request: pb.GetPersonaRequest, context: Context
    ) -> pb.GetPersonaResponse:
        c = Checks()
        agent = c.agent_name("name", request.name)
        c.done()
        with translated(request.name):
            row = await self._d.persona(agent)
        return pb.GetPersonaResponse(persona=self._persona(row))

    async def ListPersonas(
        self, request: pb.ListPersonasRequest, context: Context
    ) -> pb.ListPersonasResponse:
        c = Checks()
        size = c.page_size("page_size", request.page_size)
        cursor = c.cursor("personas", request.page_token, str)
        c.done()
        rows = await self._d.store.list_personas(cursor or "", size + 1)
        token = paging.encode("personas", rows[size - 1].agent) if len(rows) > size else ""
        return pb.ListPersonasResponse(
            personas=[self._persona(r) for r in rows[:size]], next_page_token=token
        )

    async def DeletePersona(
        self, request: pb.DeletePersonaRequest, context: Context
    ) -> pb.DeletePersonaResponse:
        c = Checks()
        agent = c.agent_name("name", request.name)
        c.request_id("request_id", request.request_id)
        c.done()
        with translated(request.name):
            await self._d.delete_persona(agent, allow_missing=request.allow_missing)
        return pb.DeletePersonaResponse(name=request.name)

    async def UpdatePersonaState(
        self, request: pb.UpdatePersonaStateRequest, context: Context
    ) -> pb.UpdatePersonaStateResponse:
        c = Checks()
        name = request.persona.name
        agent = c.agent_name("persona.name", name)
        paths = c.mask("update_mask", request.update_mask, parse.PERSONA_PATHS, ("state.",))
        change = parse.persona_change(c, request.persona, paths)
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(name):
            row = await self._d.update_persona(
                agent, change, op="update_persona_state", request_id=key
            )
        return pb.UpdatePersonaStateResponse(persona=self._persona(row))

    async def ShiftMood(
        self, request: pb.ShiftMoodRequest, context: Context
    ) -> pb.ShiftMoodResponse:
        c = Checks()
        agent = c.agent_name("name", request.name)
        delta = Mood(
            c.number("valence_delta", request.valence_delta, -2, 2),
            c.number("arousal_delta", request.arousal_delta, -1, 1),
            c.number("dominance_delta", request.dominance_delta, -1, 1),
        )
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(request.name):
            row = await self._d.shift_mood(agent, delta, key)
        return pb.ShiftMoodResponse(persona=self._persona(row))

    # relationships

    async def GetRelationship(
        self, request: pb.GetRelationshipRequest, context: Context
    ) -> pb.GetRelationshipResponse:
        c = Checks()
        agent, other = c.child_name("name", request.name, "relationships", COUNTERPARTY)
        c.done()
        with translated(request.name):
            row = await self._d.get_relationship(agent, other.lower())
        return pb.GetRelationshipResponse(relationship=convert.relationship(row))

    async def ListRelationships(
        self, request: pb.ListRelationshipsRequest, context: Context
    ) -> pb.ListRelationshipsResponse:
        c = Checks()
        agent = c.agent_name("parent", request.parent)
        size = c.page_size("page_size", request.page_size)
        query = f"relationships|{request.parent}"
        cursor = c.cursor(query, request.page_token, str)
        c.done()
        with translated(request.parent):
            rows = await self._d.list_relationships(agent, cursor or "", size + 1)
        token = paging.encode(query, rows[size - 1].counterparty) if len(rows) > size else ""
        return pb.ListRelationshipsResponse(
            relationships=[convert.relationship(r) for r in rows[:size]], next_page_token=token
        )

    async def UpdateRelationship(
        self, request: pb.UpdateRelationshipRequest, context: Context
    ) -> pb.UpdateRelationshipResponse:
        c = Checks()
        name = request.relationship.name
        agent, other = c.child_name("relationship.name", name, "relationships", COUNTERPARTY)
        paths = c.mask("update_mask", request.update_mask, parse.RELATIONSHIP_PATHS)
        change = parse.relationship_change(c, request.relationship, paths)
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(name):
            row = await self._d.change_relationship(
                agent, other.lower(), change, op="update_relationship", request_id=key
            )
        return pb.UpdateRelationshipResponse(relationship=convert.relationship(row))

    async def RecordInteraction(
        self, request: pb.RecordInteractionRequest, context: Context
    ) -> pb.RecordInteractionResponse:
        c = Checks()
        agent, other = c.child_name("name", request.name, "relationships", COUNTERPARTY)
        change = parse.interaction(c, request)
        key = c.request_id("request_id", request.request_id)
        c.done()
        with translated(request.name):
            row = await self._d.change_relationship(
                agent, other.lower(), change, op="record_interaction", request_id=key
            )
        return pb.RecordInteractionResponse(relationship=convert.relationship(row))
