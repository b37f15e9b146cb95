"""The fleet: personas, their posts, memories, moods and events, behind every AgentService RPC."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from puppet.agent.v1 import agent_pb2 as a
from puppet.llm.v1 import llm_pb2
from puppet.memory.v1 import memory_pb2, persona_pb2, relationship_pb2
from puppet.social.v1 import social_pb2
from puppet_runtime import NotFound

from puppet_agent import convert, errors
from puppet_agent.clients import Clients, handle_for
from puppet_agent.personas import PersonaFile, PersonaInvalid, parse, stored_copy
from puppet_agent.store import AgentStore, EventRecord, PersonaRecord, PostRecord
from puppet_agent.trading import private_key, setup_wallet

log = logging.getLogger(__name__)

_OUTBOX_DELIVERY = {
    social_pb2.OUTBOX_STATE_QUEUED: "queued",
    social_pb2.OUTBOX_STATE_APPROVED: "queued",
    social_pb2.OUTBOX_STATE_SENDING: "queued",
    social_pb2.OUTBOX_STATE_NEEDS_REVIEW: "needs_review",
    social_pb2.OUTBOX_STATE_SENT: "sent",
    social_pb2.OUTBOX_STATE_FAILED: "failed",
    social_pb2.OUTBOX_STATE_REJECTED: "rejected",
}
TERMINAL = frozenset({"sent", "failed", "rejected"})
PERSONA_IDS_TTL_S = 10.0
"""How stale the personas a composition may mention can be (each post read all 1,000 before)."""
ALLOWED_HANDLES = 100
"""A composition may mention this many other personas: the first ones by creation."""
PERSONA_LIST_TTL_S = 1.0
"""How long a page of persona records is reused by the listings (each GET /api/agents read the
table): a persona created, replaced, paused or deleted through another replica shows at most
this late; this replica's own changes drop the pages at once."""


class Life(Protocol):
    """What the fleet tells the runner (a no-op when personas' lives are not run here)."""

    def persona_changed(self, agent_id: str) -> None: ...
    def persona_removed(self, agent_id: str) -> None: ...
    def event_created(self, event: EventRecord) -> None: ...
    def next_post_time(self, agent_id: str) -> float | None: ...
    async def lease(self, agent_id: str) -> tuple[str, float | None]: ...
    async def leases(self) -> dict[str, tuple[str, float | None]]: ...


class NoLife:
    """Lives not run in this process."""

    def persona_changed(self, agent_id: str) -> None:
        return None

    def persona_removed(self, agent_id: str) -> None:
        return None

    def event_created(self, event: EventRecord) -> None:
        return None

    def next_post_time(self, agent_id: str) -> float | None:
        return None

    async def lease(self, agent_id: str) -> tuple[str, float | None]:
        return "", None

    async def leases(self) -> dict[str, tuple[str, float | None]]:
        return {}


def delivery_of(item: social_pb2.OutboxItem, now: float) -> tuple[str, float | None]:
    """Our delivery state of an outbox item, and when a scheduled one will be sent."""
    state = _OUTBOX_DELIVERY.get(item.state, "queued")
    due = convert.seconds(item.next_attempt_time)
    if state == "queued" and due is not None and due > now + 1:
        return "scheduled", due
    return state, None


def network_id(item: social_pb2.OutboxItem) -> str | None:
    if item.state != social_pb2.OUTBOX_STATE_SENT or not item.posts:
        return None
    return item.posts[0].rsplit("/", 1)[-1]


def derived(*parts: str) -> str:
    """A request_id derived from parts, at most 128 characters."""
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]
    return f"{parts[0][:60]}-{digest}"


@dataclass
class Composed:
    """A post or reply handed to the outbox."""

    text: str
    item: social_pb2.OutboxItem
    record: PostRecord


@dataclass
class Fleet:
    """Domain of the agent service; the servicer translates, the runner calls in too."""

    store: AgentStore
    opened: Clients | None
    """The dependencies' clients; None until attach() (channels belong to the running loop)."""
    provider: str = "persona"
    recall_top_k: int = 8
    schedule_scale: float = 1.0
    """Multiplies every persona's minimum gap between posts (a demo setting)."""
    clock: Callable[[], float] = time.time
    life: Life = field(default_factory=NoLife)
    started: float = field(default_factory=time.monotonic)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _parsed: dict[str, tuple[tuple[int, float], PersonaFile]] = field(default_factory=dict)
    """Each persona's validated file by (version, update time): a post needed it 2-3 times."""
    _ids: tuple[float, list[tuple[str, str]]] | None = None
    """(monotonic time read, (id, handle) of the first ALLOWED_HANDLES + 1 personas): every
    composition names ALLOWED_HANDLES of them (all but its own)."""
    _pages: dict[tuple[int, int, bool | None], tuple[float, list[PersonaRecord]]] = field(
        default_factory=dict
    )
    """(after_seq, limit, paused) -> (monotonic time read, records): the listings' pages."""

    @property
    def clients(self) -> Clients:
        if self.opened is None:
            raise RuntimeError("the fleet's clients are not open yet")
        return self.opened

    def attach(self, clients: Clients) -> None:
        self.opened = clients

    # personas

    async def persona(self, agent_id: str) -> tuple[PersonaRecord, PersonaFile]:
        record = await self.store.get_persona(agent_id)
        if record is None:
            raise errors.agent_not_found(agent_id)
        return record, self.parsed(record)

    async def list_personas(
        self, *, after_seq: int, limit: int, paused: bool | None = None
    ) -> list[PersonaRecord]:
        """A page of persona records, reused for at most PERSONA_LIST_TTL_S."""
        key = (after_seq, limit, paused)
        now = time.monotonic()
        found = self._pages.get(key)
        if found is None or now - found[0] >= PERSONA_LIST_TTL_S:
            if len(self._pages) >= 64:
                self._pages.clear()
            records = await self.store.list_personas(
                after_seq=after_seq, limit=limit, paused=paused
            )
            found = self._pages[key] = (now, records)
        return found[1]

    async def set_paused(self, agent_id: str, paused: bool) -> PersonaRecord | None:
        record = await self.store.set_paused(agent_id, paused, self.clock())
        self._changed()
        if record is not None:
            self.life.persona_changed(agent_id)
        return record

    def _changed(self) -> None:
        self._ids = None
        self._pages.clear()

    def parsed(self, record: PersonaRecord) -> PersonaFile:
        """The record's validated persona file, parsed once per version."""
        key = (record.version, record.update_time)
        cached = self._parsed.get(record.id)
        if cached is None or cached[0] != key:
            cached = self._parsed[record.id] = (key, parse(record.config))
        return cached[1]

    async def state(self, agent_id: str) -> persona_pb2.Persona | None:
        """The persona's state in memory (mood, last post, cursor); None if memory lacks it.

        Read through the memory client's cache: see MemoryClient for how stale it can be."""
        try:
            return await self.clients.memory.get_persona(agent_id)
        except NotFound:
            return None

    async def states(self, agent_ids: list[str]) -> list[persona_pb2.Persona | None]:
        """state() of many personas, in order, in a few memory calls."""
        found = await self.clients.memory.get_personas(agent_ids)
        return [found.get(agent_id) for agent_id in agent_ids]

    async def put_persona(
        self, raw: dict[str, Any], *, must_exist: str | None = None
    ) -> PersonaRecord:
        """Validate, register in memory and social, seed memory, then store (create or replace)."""
        try:
            persona = parse(raw)
        except PersonaInvalid as err:
            raise errors.persona_invalid(err.violations) from None
        if must_exist is not None:
            if persona.id != must_exist:
                raise errors.persona_invalid([("id", f"must equal the agent id {must_exist!r}")])
            if await self.store.get_persona(must_exist) is None:
                raise errors.agent_not_found(must_exist)
        await self.clients.memory.ensure_persona(persona.id, persona.display_name)
        if persona.initial_memory is not None:
            await self.seed(persona)
        await self.clients.social.ensure_account(persona.id, persona.display_name, credentials(raw))
        if self.clients.chain is not None and private_key(raw) is not None:
            await setup_wallet(self.clients.chain, self.clients.memory, persona.id, raw)
        record = await self.store.upsert_persona(persona.id, stored_copy(raw), self.clock())
        self._changed()
        self.life.persona_changed(persona.id)
        return record

    async def seed(self, persona: PersonaFile) -> None:
        """Core memories, recent events and relationships from initial_memory (idempotent)."""
        seed = persona.initial_memory
        assert seed is not None
        config = memory_pb2.Provenance(
            source="config", channel=memory_pb2.PROVENANCE_CHANNEL_CONFIG, trust=1.0
        )
        memories = [
            memory_pb2.Memory(
                kind=memory_pb2.MEMORY_KIND_CORE,
                content=text[:8_000],
                importance=0.9,
                provenance=config,
            )
            for text in seed.core_memories
            if text.strip()
        ]
        for item in seed.recent_events:
            content, importance = (
                (item, 0.6) if isinstance(item, str) else (item.content, item.importance)
            )
            if content.strip():
                memories.append(
                    memory_pb2.Memory(
                        kind=memory_pb2.MEMORY_KIND_EVENT,
                        content=content[:8_000],
                        importance=importance,
                        provenance=config,
                    )
                )
        body = json.dumps(seed.model_dump(mode="json"), sort_keys=True)
        await self.clients.memory.seed(persona.id, memories, derived("seed", persona.id, body))
        for counterparty, rel in seed.relationships.items():
            await self.clients.memory.set_relationship(
                persona.id,
                counterparty,
                relationship_pb2.Relationship(
                    sentiment=rel.sentiment,
                    familiarity=rel.familiarity,
                    trust=rel.trust,
                    notes=rel.notes,
                ),
            )

    async def delete(self, agent_id: str, purge_memory: bool) -> None:
        self.life.persona_removed(agent_id)
        await self.store.delete_persona(agent_id)
        self._changed()
        self._parsed.pop(agent_id, None)
        if purge_memory:
            await self.clients.memory.delete_persona(agent_id)

    async def runtime(self, record: PersonaRecord) -> a.AgentRuntime:
        return (await self.runtimes([record]))[0]

    async def runtimes(self, records: list[PersonaRecord]) -> list[a.AgentRuntime]:
        """Runtimes of many personas: their states and the lease table read once."""
        if len(records) == 1:
            lease = await self.life.lease(records[0].id)
            holders = {records[0].id: lease}
        else:
            holders = await self.life.leases()
        states = await self.states([r.id for r in records])
        return [
            self._runtime(r, s, holders.get(r.id, ("", None)))
            for r, s in zip(records, states, strict=True)
        ]

    def _runtime(
        self,
        record: PersonaRecord,
        state: persona_pb2.Persona | None,
        lease: tuple[str, float | None],
    ) -> a.AgentRuntime:
        replica, expires = lease
        last = convert.seconds(state.last_post_time) if state is not None else None
        return a.AgentRuntime(
            agent=f"agents/{record.id}",
            state=a.AGENT_STATE_PAUSED if record.paused else a.AGENT_STATE_RUNNING,
            next_post_time=None
            if record.paused
            else convert.ts(self.life.next_post_time(record.id)),
            last_post_time=convert.ts(last),
            last_mention_id=state.last_mention_id if state is not None else "",
            replica=replica,
            lease_expire_time=convert.ts(expires),
            pause_time=convert.ts(record.pause_time),
        )

    # composition

    async def context(
        self, agent_id: str, state: persona_pb2.Persona | None, query: str
    ) -> llm_pb2.CompositionContext:
        """The composition context with the mood of state (read by the caller)."""
        return (await self._composition(agent_id, query, state))[0]

    async def _composition(
        self, agent_id: str, query: str, state: persona_pb2.Persona | None = None
    ) -> tuple[llm_pb2.CompositionContext, persona_pb2.Persona | None]:
        """The composition context and the persona's state, read with the recall (one memory
        call); a state given is used for the mood instead."""
        recent, (memories, recalled), ids = await asyncio.gather(
            self.store.list_posts(agent_id, delivery=None, before_seq=None, limit=50),
            self.clients.memory.recall_with_state(agent_id, query, self.recall_top_k),
            self._persona_handles(),
        )
        state = recalled if state is None else state
        mood = convert.mood(state)
        return llm_pb2.CompositionContext(
            mood=llm_pb2.Mood(valence=mood.valence, arousal=mood.arousal, dominance=mood.dominance),
            memories=[
                llm_pb2.RecalledMemory(
                    memory=m.name,
                    content=m.content[:2_000],
                    kind=convert.KIND_NAMES.get(m.kind, "general"),
                    importance=m.importance,
                )
                for m in memories
            ],
            recent_posts=[p.text for p in recent],
            allowed_handles=[h for k, h in ids if k != agent_id][:ALLOWED_HANDLES],
        ), state

    def too_soon(
        self, persona: PersonaFile, state: persona_pb2.Persona | None
    ) -> tuple[int, float] | None:
        """(last post ms, retry time) when the persona posted less than its minimum gap ago."""
        if state is None or not state.HasField("last_post_time"):
            return None
        last = state.last_post_time.ToMilliseconds() / 1000
        gap = persona.behavior.post_frequency.min_hours_between_posts * 3600 * self.schedule_scale
        if self.clock() - last >= gap:
            return None
        return int(last * 1000), last + gap

    def _refuse_too_soon(self, persona: PersonaFile, state: persona_pb2.Persona | None) -> None:
        soon = self.too_soon(persona, state)
        if soon is not None:
            raise errors.post_too_soon(soon[0], _dt(soon[1]))

    async def create_post(
        self,
        agent_id: str,
        *,
        topic: str = "",
        thread_length: int = 0,
        force: bool = False,
        request_id: str,
        trigger: str = "api",
        persona: PersonaFile | None = None,
    ) -> Composed:
        """Compose, hand to the outbox (request_id makes a repeat harmless), remember.

        "Too soon" is checked on the cached state first (no memory call when it refuses), then
        on the state read with the recall. persona: the caller's copy when it has just read it
        (saves reading it again)."""
        async with self._lock(agent_id):
            if persona is None:
                _, persona = await self.persona(agent_id)
            if not force:
                self._refuse_too_soon(persona, self.clients.memory.cached_state(agent_id))
            parts = min(
                max(thread_length, 0), persona.behavior.content_preferences.max_thread_length
            )
            query = topic or persona.description or persona.display_name
            context, state = await self._composition(agent_id, query)
            if not force:
                self._refuse_too_soon(persona, state)
            composed = await self.clients.llm.compose_post(
                convert.llm_persona(agent_id, persona, self.provider),
                context,
                topic,
                parts if parts > 1 else 0,
                derived("compose", request_id),
            )
            texts = list(composed.thread_parts) or [composed.composition.text]
            social_key = derived("post", request_id)
            if len(texts) > 1:
                item = await self.clients.social.thread(agent_id, texts, social_key)
                kind = "thread"
            else:
                item = await self.clients.social.post(agent_id, texts[0], social_key)
                kind = "post"
            record = await self._remember_post(
                agent_id, persona, kind, "\n\n".join(texts), "", item, trigger, request_id
            )
            return Composed(texts[0], item, record)

    async def create_reply(
        self,
        agent_id: str,
        target_id: str,
        *,
        fallback_text: str = "",
        request_id: str,
        trigger: str = "api",
        quote: bool = False,
    ) -> Composed:
        """Compose a reply (or quote) to a network post, hand it to the outbox, remember."""
        async with self._lock(agent_id):
            _, persona = await self.persona(agent_id)
            target_name = f"accounts/-/posts/{target_id}"
            post = await self.clients.social.get_post(agent_id, target_name)
            ancestors = await self.clients.social.conversation(post.name) if post else []
            target = llm_pb2.TargetPost(
                post=post.name if post else target_name,
                text=(post.text if post else fallback_text)[:4_000]
                or "This is a placeholder for the original tweet",
                author_handle=post.author_handle if post else "",
                author_user_id=post.author_user_id if post else "",
                conversation=[
                    llm_pb2.TargetPost(
                        post=p.name, text=p.text[:4_000], author_handle=p.author_handle
                    )
                    for p in ancestors[-10:]
                ],
            )
            counterparty = await self._counterparty(agent_id, post)
            context, _ = await self._composition(agent_id, target.text)
            if counterparty is not None:
                context.allowed_handles.append(counterparty.id)
            llm_persona = convert.llm_persona(agent_id, persona, self.provider)
            composition = await self.clients.llm.compose_reply(
                llm_persona,
                context,
                target,
                counterparty,
                derived("compose", request_id),
                quote=quote,
            )
            social_key = derived("reply", request_id)
            link = post.name if post else target_name
            if quote:
                item = await self.clients.social.post(
                    agent_id, composition.text, social_key, quoted_post=link
                )
            else:
                item = await self.clients.social.post(
                    agent_id, composition.text, social_key, in_reply_to=link
                )
            record = await self._remember_post(
                agent_id,
                persona,
                "quote" if quote else "reply",
                composition.text,
                link,
                item,
                trigger,
                request_id,
            )
            if counterparty is not None:
                await self.clients.memory.record_interaction(
                    agent_id,
                    counterparty.id,
                    familiarity=0.05,
                    note=f"{'quoted' if quote else 'replied to'}: {target.text[:200]}",
                    request_id=derived("interaction", request_id),
                )
            return Composed(composition.text, item, record)

    async def announce_trade(
        self, agent_id: str, trade: llm_pb2.TradeFacts, request_id: str
    ) -> Composed:
        """A post about a confirmed trade, rendered by the llm from the receipt's facts only."""
        async with self._lock(agent_id):
            _, persona = await self.persona(agent_id)
            context, _ = await self._composition(agent_id, f"trade {trade.output_symbol}")
            composition = await self.clients.llm.compose_trade(
                convert.llm_persona(agent_id, persona, self.provider),
                context,
                trade,
                derived("compose", request_id),
            )
            item = await self.clients.social.post(
                agent_id, composition.text, derived("post", request_id)
            )
            record = await self._remember_post(
                agent_id, persona, "trade", composition.text, "", item, "trade", request_id
            )
            return Composed(composition.text, item, record)

    async def _counterparty(
        self, agent_id: str, post: social_pb2.Post | None
    ) -> llm_pb2.Counterparty | None:
        if post is None or not post.author_handle:
            return None
        author = post.author_account.rsplit("/", 1)[-1] if post.author_account else ""
        who = (author or post.author_handle).lower()
        rel = await self.clients.memory.relationship(agent_id, who)
        out = llm_pb2.Counterparty(id=who, display_name=post.author_handle, is_persona=bool(author))
        if rel is not None:
            out.sentiment, out.familiarity, out.trust = rel.sentiment, rel.familiarity, rel.trust
            out.notes.extend(list(rel.notes)[:10])
        return out

    async def _remember_post(
        self,
        agent_id: str,
        persona: PersonaFile,
        kind: str,
        text: str,
        target: str,
        item: social_pb2.OutboxItem,
        trigger: str,
        request_id: str,
    ) -> PostRecord:
        now = self.clock()
        delivery, due = delivery_of(item, now)
        sent = item.posts[0] if item.state == social_pb2.OUTBOX_STATE_SENT and item.posts else ""
        record, _ = await asyncio.gather(
            self.store.add_post(
                PostRecord(
                    id=uuid.uuid4().hex[:16],
                    agent=agent_id,
                    kind=kind,
                    text=text,
                    target_post=target,
                    social_post=sent,
                    outbox_item=item.name,
                    delivery=delivery,
                    scheduled_time=due,
                    create_time=now,
                    trigger=trigger,
                )
            ),
            self.clients.memory.create_memory(
                agent_id,
                memory_pb2.Memory(
                    kind=memory_pb2.MEMORY_KIND_POST,
                    content=text[:8_000],
                    importance=0.5,
                    metadata={"kind": kind, "trigger": trigger, "outbox_item": item.name[:1_024]},
                    provenance=memory_pb2.Provenance(
                        source=agent_id, channel=memory_pb2.PROVENANCE_CHANNEL_POST, trust=1.0
                    ),
                ),
                request_id=derived("post-memory", request_id),
                last_post_time=_dt(now),
            ),
        )
        return record

    async def refresh_posts(self, posts: list[PostRecord]) -> list[PostRecord]:
        """Delivery states of non-terminal posts, re-read from the social outbox."""
        out = []
        for post in posts:
            if post.delivery not in TERMINAL and post.outbox_item:
                item = await self.clients.social.outbox_item(post.outbox_item)
                if item is not None:
                    delivery, due = delivery_of(item, self.clock())
                    sent = item.posts[0] if network_id(item) else post.social_post
                    if (delivery, sent, due) != (
                        post.delivery,
                        post.social_post,
                        post.scheduled_time,
                    ):
                        await self.store.update_post(
                            post.id, delivery=delivery, social_post=sent, scheduled_time=due
                        )
                        post = PostRecord(
                            **{
                                **post.__dict__,
                                "delivery": delivery,
                                "social_post": sent,
                                "scheduled_time": due,
                            }
                        )
            out.append(post)
        return out

    # events

    async def create_event(
        self, kind: str, data: Any, targets: list[str], priority: str, delay_ms: int
    ) -> EventRecord:
        now = self.clock()
        record = await self.store.add_event(
            EventRecord(
                id=str(uuid.uuid4()),
                type=kind,
                data=data,
                targets=tuple(targets),
                priority=priority or "normal",
                create_time=now,
                execute_after=now + delay_ms / 1000 if delay_ms > 0 else None,
            )
        )
        self.life.event_created(record)
        return record

    async def _persona_handles(self) -> list[tuple[str, str]]:
        """(id, sandbox handle) of the first ALLOWED_HANDLES + 1 personas, re-read at most every
        PERSONA_IDS_TTL_S (other replicas create and delete too) and at once after a change
        made here."""
        now = time.monotonic()
        if self._ids is None or now - self._ids[0] >= PERSONA_IDS_TTL_S:
            records = await self.store.list_personas(limit=ALLOWED_HANDLES + 1)
            self._ids = (now, [(r.id, handle_for(r.id)) for r in records])
        return self._ids[1]

    def _lock(self, agent_id: str) -> asyncio.Lock:
        return self._locks.setdefault(agent_id, asyncio.Lock())


def credentials(raw: dict[str, Any]) -> social_pb2.XCredentials | None:
    """A persona file's own X credentials when all four are set (else the shared default)."""
    creds = raw.get("twitter_credentials")
    if not isinstance(creds, dict):
        return None
    keys = ("apiKey", "apiKeySecret", "accessToken", "accessTokenSecret")
    values = [creds.get(k) for k in keys]
    if not all(isinstance(v, str) and v for v in values):
        return None
    return social_pb2.XCredentials(
        api_key=str(values[0]),
        api_key_secret=str(values[1]),
        access_token=str(values[2]),
        access_token_secret=str(values[3]),
    )


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
