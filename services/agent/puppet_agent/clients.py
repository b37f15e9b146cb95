"""Typed async wrappers over memory, llm, social and chain, with their errors mapped to ours."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from puppet.chain.v1 import chain_service_pb2 as chain_pb
from puppet.chain.v1 import chain_service_pb2_grpc as chain_rpc
from puppet.llm.v1 import llm_pb2, llm_service_pb2
from puppet.llm.v1 import llm_service_pb2_grpc as llm_rpc
from puppet.memory.v1 import memory_pb2, memory_service_pb2, persona_pb2, relationship_pb2
from puppet.memory.v1 import memory_service_pb2_grpc as memory_rpc
from puppet.social.v1 import social_pb2, social_service_pb2
from puppet.social.v1 import social_service_pb2_grpc as social_rpc
from puppet_runtime import ServiceError, open_channel
from puppet_runtime.testing import status_of

from puppet_agent import errors

if TYPE_CHECKING:
    from puppet.chain.v1.chain_service_pb2_grpc import ChainServiceAsyncStub
    from puppet.llm.v1.llm_service_pb2_grpc import LlmServiceAsyncStub
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub

_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
}
_HANDLE_BAD = re.compile(r"[^A-Za-z0-9_]")


def handle_for(agent_id: str) -> str:
    """The sandbox handle of a persona: its id with [^A-Za-z0-9_] as "_", at most 15 long."""
    return _HANDLE_BAD.sub("_", agent_id)[:15]


def translate(service: str, err: grpc.aio.AioRpcError, agent_id: str = "") -> Exception:
    """A dependency's failure as this service's error (or the original for a bug of ours)."""
    code, info, _ = status_of(err)
    reason = info.reason if info is not None else ""
    if code in _TRANSIENT:
        return errors.unavailable(service)
    if reason == "PERSONA_NOT_FOUND":
        return errors.agent_not_found(agent_id)
    if reason == "BUDGET_EXHAUSTED" and info is not None:
        return errors.llm_budget_exhausted(info.metadata.get("budget", "tokens"))
    if service == "llm" and code is grpc.StatusCode.FAILED_PRECONDITION:
        return errors.post_refused(reason, err.details() or reason)
    return err


@contextmanager
def calling(service: str, agent_id: str = "") -> Iterator[None]:
    """Map a failed call inside the block to this service's errors."""
    try:
        yield
    except grpc.aio.AioRpcError as err:
        mapped = translate(service, err, agent_id)
        if mapped is err:
            raise
        raise mapped from err


def _ts(when: datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


@dataclass
class MemoryClient:
    """MemoryService: persona state, memories, relationships."""

    stub: MemoryServiceAsyncStub

    async def ensure_persona(self, agent_id: str, display_name: str) -> persona_pb2.Persona:
        request = memory_service_pb2.CreatePersonaRequest(
            persona_id=agent_id,
            persona=persona_pb2.Persona(
                display_name=display_name[:128],
                baseline_mood=persona_pb2.Mood(valence=0, arousal=0, dominance=0.5),
            ),
            allow_existing=True,
        )
        with calling("memory", agent_id):
            return (await self.stub.CreatePersona(request)).persona

    async def get_persona(self, agent_id: str) -> persona_pb2.Persona:
        request = memory_service_pb2.GetPersonaRequest(name=f"agents/{agent_id}")
        with calling("memory", agent_id):
            return (await self.stub.GetPersona(request)).persona

    async def delete_persona(self, agent_id: str) -> None:
        request = memory_service_pb2.DeletePersonaRequest(
            name=f"agents/{agent_id}", allow_missing=True
        )
        with calling("memory", agent_id):
            await self.stub.DeletePersona(request)

    async def set_last_post(self, agent_id: str, when: datetime) -> None:
        persona = persona_pb2.Persona(name=f"agents/{agent_id}", last_post_time=_ts(when))
        await self._update(agent_id, persona, ["last_post_time"])

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
        with calling("memory", agent_id):
            await self.stub.UpdatePersonaState(request)

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
        with calling("memory", agent_id):
            return (await self.stub.ShiftMood(request)).persona

    async def create_memory(
        self, agent_id: str, memory: memory_pb2.Memory, request_id: str = ""
    ) -> memory_pb2.Memory:
        request = memory_service_pb2.CreateMemoryRequest(
            parent=f"agents/{agent_id}", memory=memory, request_id=request_id
        )
        with calling("memory", agent_id):
            return (await self.stub.CreateMemory(request)).memory

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

    async def recall(self, agent_id: str, query: str, top_k: int) -> list[memory_pb2.Memory]:
        if top_k <= 0 or not query.strip():
            return []
        request = memory_service_pb2.RecallMemoriesRequest(
            parent=f"agents/{agent_id}", text=query[:8_000], top_k=top_k
        )
        with calling("memory", agent_id):
            return [r.memory for r in (await self.stub.RecallMemories(request)).results]

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


@dataclass
class LlmClient:
    """LlmService: composition, reaction decisions and prompts."""

    stub: LlmServiceAsyncStub

    async def compose_post(
        self,
        persona: llm_pb2.Persona,
        context: llm_pb2.CompositionContext,
        topic: str,
        thread_length: int,
        request_id: str,
    ) -> llm_service_pb2.ComposePostResponse:
        request = llm_service_pb2.ComposePostRequest(
            persona=persona,
            context=context,
            topic=topic,
            thread_length=thread_length,
            request_id=request_id,
        )
        with calling("llm"):
            return await self.stub.ComposePost(request)

    async def compose_reply(
        self,
        persona: llm_pb2.Persona,
        context: llm_pb2.CompositionContext,
        target: llm_pb2.TargetPost,
        counterparty: llm_pb2.Counterparty | None,
        request_id: str,
    ) -> llm_pb2.Composition:
        request = llm_service_pb2.ComposeReplyRequest(
            persona=persona,
            context=context,
            target=target,
            counterparty=counterparty,
            request_id=request_id,
        )
        with calling("llm"):
            return (await self.stub.ComposeReply(request)).composition

    async def compose_quote(
        self,
        persona: llm_pb2.Persona,
        context: llm_pb2.CompositionContext,
        target: llm_pb2.TargetPost,
        counterparty: llm_pb2.Counterparty | None,
        request_id: str,
    ) -> llm_pb2.Composition:
        request = llm_service_pb2.ComposeQuoteRequest(
            persona=persona,
            context=context,
            target=target,
            counterparty=counterparty,
            request_id=request_id,
        )
        with calling("llm"):
            return (await self.stub.ComposeQuote(request)).composition

    async def decide_reaction(
        self,
        persona: llm_pb2.Persona,
        context: llm_pb2.CompositionContext,
        target: llm_pb2.TargetPost,
        counterparty: llm_pb2.Counterparty | None,
        request_id: str,
    ) -> llm_pb2.ReactionDecision:
        request = llm_service_pb2.DecideReactionRequest(
            persona=persona,
            context=context,
            target=target,
            counterparty=counterparty,
            request_id=request_id,
        )
        with calling("llm"):
            return (await self.stub.DecideReaction(request)).decision

    async def system_prompt(
        self, persona: llm_pb2.Persona, context: llm_pb2.CompositionContext, topic: str
    ) -> str:
        request = llm_service_pb2.RenderPromptRequest(
            persona=persona, context=context, task=llm_service_pb2.TASK_POST, topic=topic
        )
        with calling("llm"):
            return (await self.stub.RenderPrompt(request)).system_prompt


@dataclass
class SocialClient:
    """SocialService: the persona's account, the outbox, reads and the mention stream."""

    stub: SocialServiceAsyncStub
    network: int = social_pb2.NETWORK_SANDBOX

    async def ensure_account(
        self, agent_id: str, display_name: str, credentials: social_pb2.XCredentials | None
    ) -> social_pb2.Account:
        """The persona's account (id = persona id), registered on first use."""
        name = f"accounts/{agent_id}"
        with calling("social", agent_id):
            try:
                return (
                    await self.stub.GetAccount(social_service_pb2.GetAccountRequest(name=name))
                ).account
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.NOT_FOUND:
                    raise
            account = social_pb2.Account(
                network=self.network,  # type: ignore[arg-type]
                display_name=display_name[:50],
                agents=[f"agents/{agent_id}"],
            )
            if self.network == social_pb2.NETWORK_SANDBOX:
                account.handle = handle_for(agent_id)
                credentials = None
            request = social_service_pb2.CreateAccountRequest(
                account=account, account_id=agent_id, credentials=credentials
            )
            try:
                return (await self.stub.CreateAccount(request)).account
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
                got = await self.stub.GetAccount(social_service_pb2.GetAccountRequest(name=name))
                return got.account

    async def post(
        self,
        agent_id: str,
        text: str,
        request_id: str,
        *,
        in_reply_to: str = "",
        quoted_post: str = "",
    ) -> social_pb2.OutboxItem:
        request = social_service_pb2.CreatePostRequest(
            parent=f"accounts/{agent_id}",
            text=text,
            in_reply_to=in_reply_to,
            quoted_post=quoted_post,
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.CreatePost(request)).item

    async def thread(
        self, agent_id: str, texts: Sequence[str], request_id: str
    ) -> social_pb2.OutboxItem:
        request = social_service_pb2.CreateThreadRequest(
            parent=f"accounts/{agent_id}",
            texts=list(texts),
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.CreateThread(request)).item

    async def like(self, agent_id: str, post: str, request_id: str) -> social_pb2.OutboxItem:
        request = social_service_pb2.LikePostRequest(
            account=f"accounts/{agent_id}",
            post=post,
            agent=f"agents/{agent_id}",
            request_id=request_id,
        )
        with calling("social", agent_id):
            return (await self.stub.LikePost(request)).item

    async def get_post(self, agent_id: str, post: str) -> social_pb2.Post | None:
        """The post read through the persona's account; None when it cannot be read."""
        try:
            got = await self.stub.GetPost(social_service_pb2.GetPostRequest(name=post))
        except grpc.aio.AioRpcError as err:
            if err.code() in _TRANSIENT:
                raise errors.unavailable("social") from err
            return None
        return got.post

    async def conversation(self, post: str) -> list[social_pb2.Post]:
        """Ancestors of the post, oldest first; empty when they cannot be read."""
        try:
            got = await self.stub.GetConversation(
                social_service_pb2.GetConversationRequest(post=post, max_depth=5)
            )
        except grpc.aio.AioRpcError:
            return []
        return list(got.ancestors)

    async def recent_posts(self, account_id: str, limit: int = 5) -> list[social_pb2.Post]:
        """An account's newest posts; empty when they cannot be read."""
        try:
            got = await self.stub.ListPosts(
                social_service_pb2.ListPostsRequest(
                    parent=f"accounts/{account_id}", page_size=limit
                )
            )
        except grpc.aio.AioRpcError:
            return []
        return list(got.posts)

    async def outbox_item(self, name: str) -> social_pb2.OutboxItem | None:
        try:
            got = await self.stub.GetOutboxItem(social_service_pb2.GetOutboxItemRequest(name=name))
        except grpc.aio.AioRpcError:
            return None
        return got.item

    async def mentions(
        self, agent_id: str, after_post_id: str
    ) -> AsyncIterator[social_pb2.Mention]:
        """Mentions of the persona's account, resuming after its cursor, until cancelled."""
        call = self.stub.StreamMentions(
            social_service_pb2.StreamMentionsRequest(
                parent=f"accounts/{agent_id}", after_post_id=after_post_id
            ),
            timeout=None,
        )
        async for response in call:
            yield response.mention


@dataclass
class ChainClient:
    """ChainService (optional): wallets and trades. Only the runner's trading path uses it."""

    stub: ChainServiceAsyncStub


@dataclass
class Clients:
    """Every dependency of the orchestrator, over channels opened once."""

    memory: MemoryClient
    llm: LlmClient
    social: SocialClient
    chain: ChainClient | None
    channels: tuple[grpc.aio.Channel, ...] = ()

    @classmethod
    def open(
        cls,
        *,
        memory_addr: str,
        llm_addr: str,
        social_addr: str,
        chain_addr: str | None,
        network: int = social_pb2.NETWORK_SANDBOX,
        timeout_s: float = 10.0,
    ) -> Clients:
        memory = open_channel(
            memory_addr,
            memory_service_pb2.DESCRIPTOR.services_by_name["MemoryService"],
            timeout_s=timeout_s,
        )
        llm = open_channel(
            llm_addr,
            llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"],
            timeout_s=max(timeout_s, 60.0),
        )
        social = open_channel(
            social_addr,
            social_service_pb2.DESCRIPTOR.services_by_name["SocialService"],
            timeout_s=timeout_s,
        )
        channels = [memory, llm, social]
        chain: ChainClient | None = None
        if chain_addr:
            chain_channel = open_channel(
                chain_addr,
                chain_pb.DESCRIPTOR.services_by_name["ChainService"],
                timeout_s=timeout_s,
            )
            channels.append(chain_channel)
            chain = ChainClient(chain_rpc.ChainServiceStub(chain_channel))
        return cls(
            MemoryClient(memory_rpc.MemoryServiceStub(memory)),
            LlmClient(llm_rpc.LlmServiceStub(llm)),
            SocialClient(social_rpc.SocialServiceStub(social), network),
            chain,
            tuple(channels),
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
