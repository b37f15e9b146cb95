"""LlmService client: composition, reaction decisions, prompts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from puppet.llm.v1 import llm_pb2, llm_service_pb2

from puppet_agent.clients.base import calling

if TYPE_CHECKING:
    from puppet.llm.v1.llm_service_pb2_grpc import LlmServiceAsyncStub


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
        *,
        quote: bool = False,
    ) -> llm_pb2.Composition:
        """A reply to `target`, or a quote of it when `quote` (same inputs, another prompt)."""
        with calling("llm"):
            if quote:
                quoted = llm_service_pb2.ComposeQuoteRequest(
                    persona=persona,
                    context=context,
                    target=target,
                    counterparty=counterparty,
                    request_id=request_id,
                )
                return (await self.stub.ComposeQuote(quoted)).composition
            request = llm_service_pb2.ComposeReplyRequest(
                persona=persona,
                context=context,
                target=target,
                counterparty=counterparty,
                request_id=request_id,
            )
            return (await self.stub.ComposeReply(request)).composition

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

    async def compose_trade(
        self,
        persona: llm_pb2.Persona,
        context: llm_pb2.CompositionContext,
        trade: llm_pb2.TradeFacts,
        request_id: str,
    ) -> llm_pb2.Composition:
        request = llm_service_pb2.ComposeTradeAnnouncementRequest(
            persona=persona, context=context, trade=trade, request_id=request_id
        )
        with calling("llm"):
            return (await self.stub.ComposeTradeAnnouncement(request)).composition

    async def system_prompt(
        self, persona: llm_pb2.Persona, context: llm_pb2.CompositionContext, topic: str
    ) -> str:
        request = llm_service_pb2.RenderPromptRequest(
            persona=persona, context=context, task=llm_service_pb2.TASK_POST, topic=topic
        )
        with calling("llm"):
            return (await self.stub.RenderPrompt(request)).system_prompt
