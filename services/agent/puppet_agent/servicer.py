"""AgentServicer: validates and translates AgentService requests; the fleet does the work."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from puppet.agent.v1 import agent_pb2 as a
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc
from puppet.memory.v1 import memory_pb2, persona_pb2
from puppet_runtime import Context, FieldChecks, paging

from puppet_agent import convert, errors
from puppet_agent.fleet import Fleet
from puppet_agent.personas import ID_PATTERN
from puppet_agent.store import PersonaRecord, RequestRecord

M = TypeVar("M", bound=Message)
_ID = re.compile(ID_PATTERN)
PRIORITIES = ("critical", "high", "normal", "low")
MAX_DELAY_MS = 2_592_000_000
LEGACY_DEBUG_TOPIC = "Sample topic for debug purposes"


class Checks(FieldChecks):
    """Field checks shared by AgentService's requests."""

    def agent_id(self, value: str, field: str = "agent_id") -> None:
        if not 1 <= len(value) <= 64 or not _ID.fullmatch(value):
            self.fail(field, "must be 1-64 characters matching [a-z0-9][a-z0-9_-]*")

    def length(self, field: str, value: str, maximum: int, *, required: bool = False) -> None:
        if required and not value:
            self.fail(field, "is required")
        elif len(value) > maximum:
            self.fail(field, f"must be at most {maximum:,} characters")


def _checked_id(agent_id: str) -> str:
    checks = Checks()
    checks.agent_id(agent_id)
    checks.done()
    return agent_id


def _cursor(query: str, token: str) -> Any:
    if not token:
        return None
    try:
        return paging.decode(query, token)
    except ValueError as err:
        raise errors.invalid_field("page_token", str(err)) from None


def _fingerprint(method: str, request: Message) -> str:
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    body = copy.SerializeToString(deterministic=True)
    return f"{method}:{hashlib.sha256(body).hexdigest()}"


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, 0.0, "")


class AgentServicer(rpc.AgentServiceServicer):
    """Every RPC of AgentService."""

    def __init__(self, fleet: Fleet, admin_token: str | None = None) -> None:
        self._fleet = fleet
        self._store = fleet.store
        self._admin_token = admin_token
        self._rendered: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._last_body: (
            tuple[list[PersonaRecord], list[persona_pb2.Persona | None], bytes] | None
        ) = None
        """The last legacy page, reused while its records and states are the same cached objects."""

    async def _once(
        self,
        scope: str,
        request: Message,
        request_id: str,
        method: str,
        work: Callable[[], Awaitable[M]],
        response_type: type[M],
    ) -> M:
        """Run work once per (scope, request_id); a repeat returns the first response."""
        if not request_id:
            return await work()
        fingerprint = _fingerprint(method, request)
        found = await self._store.recall_request(scope, request_id)
        if found is None:
            result = await work()
            payload = base64.b64encode(result.SerializeToString()).decode()
            found = await self._store.remember_request(
                RequestRecord(scope, request_id, fingerprint, payload)
            )
        if found.fingerprint != fingerprint:
            raise errors.request_id_reused(request_id, method)
        return response_type.FromString(base64.b64decode(found.payload))

    def _admin(self, context: Context) -> None:
        if self._admin_token is None:
            return
        metadata = dict(context.invocation_metadata() or ())
        given = str(metadata.get("authorization", ""))
        expected = f"Bearer {self._admin_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise errors.admin_token_required()

    # status and personas

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        return pb.GetStatusResponse(
            status="online",
            agents=await self._store.count_personas(),
            uptime=round(time.monotonic() - self._fleet.started, 3),
        )

    async def _page(
        self, page_size: int, page_token: str
    ) -> tuple[list[PersonaRecord], list[persona_pb2.Persona | None], str]:
        checks = Checks()
        size = checks.page_size("page_size", page_size, default=1_000, maximum=1_000)
        checks.done()
        after = _cursor("agents", page_token) or 0
        records = await self._fleet.list_personas(after_seq=int(after), limit=size + 1)
        more = len(records) > size
        records = records[:size]
        states = await self._fleet.states([r.id for r in records])
        token = paging.encode("agents", records[-1].seq) if more and records else ""
        return records, states, token

    def _summary(self, record: PersonaRecord, state: persona_pb2.Persona | None) -> dict[str, Any]:
        """The legacy JSON of one agent, rendered once per persona version and state."""
        key = (record.version, record.update_time, state.SerializeToString() if state else None)
        found = self._rendered.get(record.id)
        if found is None or found[0] != key:
            if len(self._rendered) >= 10_000:
                self._rendered.clear()
            message = convert.summary(record.id, self._fleet.parsed(record), state)
            found = self._rendered[record.id] = (key, convert.json_value(message))
        return found[1]

    async def LegacyListAgents(
        self, request: pb.LegacyListAgentsRequest, context: Context
    ) -> pb.LegacyListAgentsResponse:
        records, states, _ = await self._page(request.page_size, request.page_token)
        last = self._last_body
        same = (
            last is not None
            and len(last[0]) == len(records)
            and all(a is b for a, b in zip(last[0], records, strict=True))
            and all(a is b for a, b in zip(last[1], states, strict=True))
        )
        if not same:
            items = [self._summary(r, s) for r, s in zip(records, states, strict=True)]
            body = json.dumps(items, separators=(",", ":")).encode()
            last = self._last_body = (records, states, body)
        assert last is not None
        return pb.LegacyListAgentsResponse(
            body=httpbody_pb2.HttpBody(content_type="application/json", data=last[2])
        )

    async def ListAgents(
        self, request: pb.ListAgentsRequest, context: Context
    ) -> pb.ListAgentsResponse:
        records, states, token = await self._page(request.page_size, request.page_token)
        agents = [
            convert.summary(r.id, self._fleet.parsed(r), s)
            for r, s in zip(records, states, strict=True)
        ]
        return pb.ListAgentsResponse(agents=agents, next_page_token=token)

    async def GetAgent(self, request: pb.GetAgentRequest, context: Context) -> pb.GetAgentResponse:
        agent_id = _checked_id(request.agent_id)
        _, persona = await self._fleet.persona(agent_id)
        state = await self._fleet.state(agent_id)
        return pb.GetAgentResponse(**convert.agent_detail(agent_id, persona, state))

    async def GetAgentMemory(
        self, request: pb.GetAgentMemoryRequest, context: Context
    ) -> pb.GetAgentMemoryResponse:
        agent_id = _checked_id(request.agent_id)
        _, persona = await self._fleet.persona(agent_id)
        memory = self._fleet.clients.memory
        core_kind, event_kind = memory_pb2.MEMORY_KIND_CORE, memory_pb2.MEMORY_KIND_EVENT
        shown_elsewhere = (
            core_kind,
            event_kind,
            memory_pb2.MEMORY_KIND_POST,
        )  # posts: tweet_history
        others = [k for k in convert.KIND_NAMES if k not in shown_elsewhere]
        core, events, other = await asyncio.gather(
            memory.list_memories(agent_id, [core_kind], limit=100_000),
            memory.list_memories(agent_id, [event_kind], limit=2_000),
            memory.list_memories(agent_id, others, limit=2_000),
        )
        relationships = await memory.relationships(agent_id)
        posts = await self._store.list_posts(agent_id, delivery=None, before_seq=None, limit=50)
        by_importance = lambda item: -item.importance  # noqa: E731
        rotating = len(persona.rotating_system_prompts)
        return pb.GetAgentMemoryResponse(
            agent_id=agent_id,
            core_memories=[convert.memory_item(m) for m in core],
            recent_events=sorted(map(convert.memory_item, events), key=by_importance)[:50],
            relationships=dict(convert.relationship(r) for r in relationships),
            long_term_memories=sorted(map(convert.memory_item, other), key=by_importance)[:100],
            tweet_history=[convert.tweet_entry(p, rotating) for p in posts],
            last_updated=convert.ts(self._fleet.clock()),
        )

    async def GetAgentContext(
        self, request: pb.GetAgentContextRequest, context: Context
    ) -> pb.GetAgentContextResponse:
        agent_id = _checked_id(request.agent_id)
        checks = Checks()
        checks.length("topic", request.topic, 280)
        checks.done()
        _, persona = await self._fleet.persona(agent_id)
        state = await self._fleet.state(agent_id)
        topic = request.topic or LEGACY_DEBUG_TOPIC
        ctx = await self._fleet.context(agent_id, state, topic)
        prompt = await self._fleet.clients.llm.system_prompt(
            convert.llm_persona(agent_id, persona, self._fleet.provider), ctx, topic
        )
        return pb.GetAgentContextResponse(
            context=prompt, has_custom_prompt=persona.has_custom_prompt
        )

    # writes

    async def CreatePost(
        self, request: pb.CreatePostRequest, context: Context
    ) -> pb.CreatePostResponse:
        checks = Checks()
        checks.agent_id(request.agent_id)
        checks.length("topic", request.topic, 280)
        checks.request_id("request_id", request.request_id)
        if not 0 <= request.thread_length <= 25:
            checks.fail("thread_length", "must be 0-25")
        checks.done()
        agent_id = request.agent_id
        _, persona = await self._fleet.persona(agent_id)

        async def work() -> pb.CreatePostResponse:
            done = await self._fleet.create_post(
                agent_id,
                topic=request.topic,
                thread_length=request.thread_length,
                force=request.force,
                request_id=request.request_id or f"api-{_new_id()}",
                persona=persona,
            )
            return pb.CreatePostResponse(
                content=done.text,
                agent_id=agent_id,
                tweet_id=convert.string_or_null(_sent_id(done.record.social_post)),
            )

        return await self._once(
            agent_id, request, request.request_id, "CreatePost", work, pb.CreatePostResponse
        )

    async def CreateReply(
        self, request: pb.CreateReplyRequest, context: Context
    ) -> pb.CreateReplyResponse:
        checks = Checks()
        checks.agent_id(request.agent_id)
        checks.length("tweet_id", request.tweet_id, 64, required=True)
        if request.tweet_id and not re.fullmatch(r"[A-Za-z0-9_-]+", request.tweet_id):
            checks.fail("tweet_id", "must be a network post id")
        checks.length("content", request.content, 4_000)
        checks.request_id("request_id", request.request_id)
        checks.done()
        agent_id = request.agent_id
        await self._fleet.persona(agent_id)

        async def work() -> pb.CreateReplyResponse:
            done = await self._fleet.create_reply(
                agent_id,
                request.tweet_id,
                fallback_text=request.content,
                request_id=request.request_id or f"api-{_new_id()}",
            )
            return pb.CreateReplyResponse(
                content=done.text,
                agent_id=agent_id,
                tweet_id=convert.string_or_null(_sent_id(done.record.social_post)),
            )

        return await self._once(
            agent_id, request, request.request_id, "CreateReply", work, pb.CreateReplyResponse
        )

    async def _put(
        self,
        request: pb.CreateAgentRequest | pb.ReplaceAgentRequest,
        must_exist: str | None,
        method: str,
    ) -> tuple[str, str]:
        checks = Checks()
        checks.request_id("request_id", request.request_id)
        if must_exist is not None:
            checks.agent_id(must_exist)
        if request.persona.ByteSize() > 256 * 1024:
            checks.fail("persona", "must be at most 256 KiB")
        checks.done()
        raw = json_format.MessageToDict(request.persona)
        if must_exist is not None:
            raw.setdefault("id", must_exist)
        record = await self._fleet.put_persona(raw, must_exist=must_exist)
        return record.id, self._fleet.parsed(record).display_name

    async def CreateAgent(
        self, request: pb.CreateAgentRequest, context: Context
    ) -> pb.CreateAgentResponse:
        async def work() -> pb.CreateAgentResponse:
            agent_id, name = await self._put(request, None, "CreateAgent")
            return pb.CreateAgentResponse(
                id=agent_id, name=name, message="Agent created successfully"
            )

        return await self._once(
            "-", request, request.request_id, "CreateAgent", work, pb.CreateAgentResponse
        )

    async def ReplaceAgent(
        self, request: pb.ReplaceAgentRequest, context: Context
    ) -> pb.ReplaceAgentResponse:
        self._admin(context)

        async def work() -> pb.ReplaceAgentResponse:
            agent_id, name = await self._put(request, request.agent_id, "ReplaceAgent")
            return pb.ReplaceAgentResponse(
                id=agent_id, name=name, message="Agent replaced successfully"
            )

        return await self._once(
            request.agent_id or "-",
            request,
            request.request_id,
            "ReplaceAgent",
            work,
            pb.ReplaceAgentResponse,
        )

    async def DeleteAgent(
        self, request: pb.DeleteAgentRequest, context: Context
    ) -> pb.DeleteAgentResponse:
        self._admin(context)
        checks = Checks()
        checks.agent_id(request.agent_id)
        checks.request_id("request_id", request.request_id)
        checks.done()
        await self._fleet.delete(request.agent_id, request.purge_memory)
        return pb.DeleteAgentResponse()

    async def _pause(self, agent_id: str, request_id: str, paused: bool) -> a.AgentRuntime:
        checks = Checks()
        checks.agent_id(agent_id)
        checks.request_id("request_id", request_id)
        checks.done()
        record = await self._fleet.set_paused(agent_id, paused)
        if record is None:
            raise errors.agent_not_found(agent_id)
        return await self._fleet.runtime(record)

    async def PauseAgent(
        self, request: pb.PauseAgentRequest, context: Context
    ) -> pb.PauseAgentResponse:
        self._admin(context)
        return pb.PauseAgentResponse(
            runtime=await self._pause(request.agent_id, request.request_id, True)
        )

    async def ResumeAgent(
        self, request: pb.ResumeAgentRequest, context: Context
    ) -> pb.ResumeAgentResponse:
        self._admin(context)
        return pb.ResumeAgentResponse(
            runtime=await self._pause(request.agent_id, request.request_id, False)
        )

    async def ShiftAgentMood(
        self, request: pb.ShiftAgentMoodRequest, context: Context
    ) -> pb.ShiftAgentMoodResponse:
        checks = Checks()
        checks.agent_id(request.agent_id)
        checks.request_id("request_id", request.request_id)
        for name in ("valence_shift", "arousal_shift", "dominance_shift"):
            if not math.isfinite(getattr(request, name)):
                checks.fail(name, "must be a finite number")
        checks.done()
        agent_id = request.agent_id
        await self._fleet.persona(agent_id)

        async def work() -> pb.ShiftAgentMoodResponse:
            state = await self._fleet.clients.memory.shift_mood(
                agent_id,
                request.valence_shift,
                request.arousal_shift,
                request.dominance_shift,
            )
            return pb.ShiftAgentMoodResponse(agent=agent_id, mood=convert.mood(state))

        return await self._once(
            agent_id, request, request.request_id, "ShiftAgentMood", work, pb.ShiftAgentMoodResponse
        )

    async def CreateMemory(
        self, request: pb.CreateMemoryRequest, context: Context
    ) -> pb.CreateMemoryResponse:
        checks = Checks()
        checks.agent_id(request.agent_id)
        checks.length("content", request.content, 8_000, required=not request.content.strip())
        checks.length("type", request.type, 32)
        checks.request_id("request_id", request.request_id)
        importance = request.importance if request.HasField("importance") else 0.5
        if not (math.isfinite(importance) and 0 <= importance <= 1):
            checks.fail("importance", "must be between 0 and 1")
        checks.done()
        agent_id = request.agent_id
        await self._fleet.persona(agent_id)
        kind_name = request.type or "general"
        kind = convert.KINDS.get(kind_name, memory_pb2.MEMORY_KIND_GENERAL)
        metadata = {} if kind_name in convert.KINDS else {"type": kind_name}

        async def work() -> pb.CreateMemoryResponse:
            stored = await self._fleet.clients.memory.create_memory(
                agent_id,
                memory_pb2.Memory(
                    kind=kind,
                    content=request.content,
                    importance=importance,
                    metadata=metadata,
                    provenance=memory_pb2.Provenance(
                        source="operator", channel=memory_pb2.PROVENANCE_CHANNEL_API
                    ),
                ),
            )
            return pb.CreateMemoryResponse(memory=convert.memory_item(stored))

        return await self._once(
            agent_id, request, request.request_id, "CreateMemory", work, pb.CreateMemoryResponse
        )

    async def GetAgentRelationships(
        self, request: pb.GetAgentRelationshipsRequest, context: Context
    ) -> pb.GetAgentRelationshipsResponse:
        agent_id = _checked_id(request.agent_id)
        await self._fleet.persona(agent_id)
        rows = await self._fleet.clients.memory.relationships(agent_id)
        return pb.GetAgentRelationshipsResponse(
            relationships=dict(convert.relationship(r) for r in rows)
        )

    # events

    async def CreateEvent(
        self, request: pb.CreateEventRequest, context: Context
    ) -> pb.CreateEventResponse:
        checks = Checks()
        checks.length("type", request.type, 64, required=True)
        checks.request_id("request_id", request.request_id)
        data = json_format.MessageToDict(request.data) if request.HasField("data") else None
        if not _truthy(data):
            checks.fail("data", 'is required (any JSON value except null, false, 0 and "")')
        elif request.data.ByteSize() > 64 * 1024:
            checks.fail("data", "must be at most 64 KiB")
        if request.priority and request.priority not in PRIORITIES:
            checks.fail("priority", f"must be one of {', '.join(PRIORITIES)}")
        if request.delay_ms > MAX_DELAY_MS:
            checks.fail("delay", "must be at most 2,592,000,000 ms (30 days)")
        for i, target in enumerate(request.target_agent_ids):
            checks.length(f"target_agent_ids[{i}]", target, 64, required=True)
        checks.done()

        async def work() -> pb.CreateEventResponse:
            record = await self._fleet.create_event(
                request.type,
                data,
                list(request.target_agent_ids),
                request.priority,
                request.delay_ms,
            )
            return pb.CreateEventResponse(
                scheduled=record.execute_after is not None,
                event=a.EventReceipt(
                    id=record.id,
                    type=record.type,
                    timestamp=convert.ts(record.create_time),
                    execute_after=convert.ts(record.execute_after),
                ),
            )

        return await self._once(
            "-", request, request.request_id, "CreateEvent", work, pb.CreateEventResponse
        )

    async def _events(self, page_size: int, page_token: str) -> pb.ListEventsResponse:
        checks = Checks()
        size = checks.page_size("page_size", page_size, default=100, maximum=1_000)
        checks.done()
        before = _cursor("events", page_token)
        rows = await self._store.list_processed(
            before_seq=None if before is None else int(before), limit=size + 1
        )
        more = len(rows) > size
        rows = rows[:size]
        token = paging.encode("events", rows[-1].seq) if more and rows else ""
        return pb.ListEventsResponse(
            events=[convert.event(r) for r in reversed(rows)], next_page_token=token
        )

    async def LegacyListEvents(
        self, request: pb.LegacyListEventsRequest, context: Context
    ) -> pb.LegacyListEventsResponse:
        page = await self._events(request.page_size, request.page_token)
        return pb.LegacyListEventsResponse(
            body=httpbody_pb2.HttpBody(
                content_type="application/json", data=convert.json_array(page.events)
            )
        )

    async def ListEvents(
        self, request: pb.ListEventsRequest, context: Context
    ) -> pb.ListEventsResponse:
        return await self._events(request.page_size, request.page_token)

    # runtimes and posts

    async def GetAgentRuntime(
        self, request: pb.GetAgentRuntimeRequest, context: Context
    ) -> pb.GetAgentRuntimeResponse:
        agent_id = _checked_id(request.agent_id)
        record, _ = await self._fleet.persona(agent_id)
        return pb.GetAgentRuntimeResponse(runtime=await self._fleet.runtime(record))

    async def ListAgentRuntimes(
        self, request: pb.ListAgentRuntimesRequest, context: Context
    ) -> pb.ListAgentRuntimesResponse:
        checks = Checks()
        size = checks.page_size("page_size", request.page_size, default=100, maximum=1_000)
        checks.done()
        query = f"runtimes:{request.state}"
        after = _cursor(query, request.page_token) or 0
        paused = {a.AGENT_STATE_PAUSED: True, a.AGENT_STATE_RUNNING: False}.get(request.state)
        records = await self._fleet.list_personas(
            after_seq=int(after), limit=size + 1, paused=paused
        )
        more = len(records) > size
        records = records[:size]
        runtimes = await self._fleet.runtimes(records)
        token = paging.encode(query, records[-1].seq) if more and records else ""
        return pb.ListAgentRuntimesResponse(runtimes=runtimes, next_page_token=token)

    async def ListAgentPosts(
        self, request: pb.ListAgentPostsRequest, context: Context
    ) -> pb.ListAgentPostsResponse:
        checks = Checks()
        checks.agent_id(request.agent_id)
        size = checks.page_size("page_size", request.page_size, default=50, maximum=500)
        checks.done()
        agent_id = request.agent_id
        await self._fleet.persona(agent_id)
        query = f"posts:{agent_id}:{request.delivery}"
        before = _cursor(query, request.page_token)
        delivery = convert.DELIVERY_NAMES.get(request.delivery)
        rows = await self._store.list_posts(
            agent_id,
            delivery=delivery,
            before_seq=None if before is None else int(before),
            limit=size + 1,
        )
        more = len(rows) > size
        rows = await self._fleet.refresh_posts(rows[:size])
        token = paging.encode(query, rows[-1].seq) if more and rows else ""
        return pb.ListAgentPostsResponse(
            posts=[convert.agent_post(r) for r in rows], next_page_token=token
        )


def _sent_id(social_post: str) -> str | None:
    return social_post.rsplit("/", 1)[-1] if social_post else None


def _new_id() -> str:
    return uuid.uuid4().hex
