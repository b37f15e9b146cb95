"""Domain results to protos."""

from __future__ import annotations

from google.protobuf import timestamp_pb2
from puppet.llm.v1 import llm_pb2

from puppet_llm import weighted
from puppet_llm.budgets import Budget
from puppet_llm.domain import Decision, Result, Sent
from puppet_llm.pool import ENUMS
from puppet_llm.store import UsageRow

_ROLES = {
    "system": llm_pb2.ROLE_SYSTEM,
    "user": llm_pb2.ROLE_USER,
    "assistant": llm_pb2.ROLE_ASSISTANT,
}
_ACTIONS = {
    "ignore": llm_pb2.REACTION_ACTION_IGNORE,
    "like": llm_pb2.REACTION_ACTION_LIKE,
    "reply": llm_pb2.REACTION_ACTION_REPLY,
    "quote": llm_pb2.REACTION_ACTION_QUOTE,
}


def _provider(name: str) -> llm_pb2.Provider.ValueType:
    return ENUMS.get(name, llm_pb2.PROVIDER_UNSPECIFIED)


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1_000)


def prompt(sent: Sent) -> llm_pb2.Prompt:
    return llm_pb2.Prompt(
        provider=_provider(sent.provider),
        model=sent.model,
        messages=[
            llm_pb2.PromptMessage(role=_ROLES[m.role], content=m.content) for m in sent.messages
        ],
        max_tokens=sent.max_tokens,
        temperature=sent.temperature,
    )


def usage(result: Result) -> llm_pb2.Usage:
    s = result.spend
    return llm_pb2.Usage(
        provider=_provider(s.provider),
        model=s.model,
        prompt_tokens=s.prompt_tokens,
        completion_tokens=s.completion_tokens,
        cost_usd=s.cost_usd,
        attempts=s.attempts,
        provider_ms=s.provider_ms,
    )


def composition(result: Result) -> llm_pb2.Composition:
    text = result.parts[0]
    return llm_pb2.Composition(
        text=text,
        weighted_length=weighted.weighted_length(text),
        prompt=prompt(result.sent),
        usage=usage(result),
    )


def decision(d: Decision) -> llm_pb2.ReactionDecision:
    return llm_pb2.ReactionDecision(
        action=_ACTIONS[d.action],
        reaction=d.reaction,
        reasoning=d.reasoning,
        confidence=d.confidence,
        sentiment_shift=d.sentiment_shift,
        model_action=_ACTIONS[d.model_action],
        fallback=d.fallback,
    )


def budget(b: Budget) -> llm_pb2.Budget:
    return llm_pb2.Budget(
        name=f"agents/{b.agent}/budget",
        daily_token_limit=b.daily_token_limit,
        daily_cost_limit_usd=b.daily_cost_limit_usd,
        tokens_spent=b.tokens_spent,
        cost_spent_usd=b.cost_spent_usd,
        reset_time=timestamp(b.reset_time_us),
    )


def usage_record(row: UsageRow) -> llm_pb2.UsageRecord:
    return llm_pb2.UsageRecord(
        agent=f"agents/{row.agent}",
        provider=_provider(row.provider),
        model=row.model,
        day=timestamp(row.day_us),
        calls=row.calls,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_usd=row.cost_usd,
    )
