"""The llm's work: budget check, prompt, model call, post rules, regeneration, accounting."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from puppet_llm import metrics, prompts, rules
from puppet_llm.budgets import BudgetBook, Spend, now_us
from puppet_llm.failures import (
    BudgetExhaustedError,
    DeadlineError,
    NearDuplicateError,
    NotConfiguredError,
    RequestIdReusedError,
    UnusableError,
)
from puppet_llm.pool import Providers
from puppet_llm.prompts import Request, Task
from puppet_llm.providers import (
    ChatMessage,
    Generation,
    GenerationParams,
    Provider,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from puppet_llm.settings import LlmSettings
from puppet_llm.store import LlmStore, StoredRequest

log = logging.getLogger(__name__)

Remaining = Callable[[], float | None]
"""Seconds left of the caller's deadline, or None without one."""
_MARGIN_S = 0.05
_THREAD_SPLIT = re.compile(r"\n\s*-{3,}\s*\n")
_ACTIONS = ("ignore", "like", "reply", "quote")


@dataclass(frozen=True, slots=True)
class Sent:
    """The exact request of the attempt that produced the result."""

    provider: str
    model: str
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float


@dataclass(frozen=True, slots=True)
class Decision:
    """A reaction decision after validation and the persona's probabilities."""

    action: str
    reaction: str = ""
    reasoning: str = ""
    confidence: float = 0.0
    sentiment_shift: float = 0.0
    model_action: str = "ignore"
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """A composed text (or thread) or a decision, with its prompt and spending."""

    sent: Sent
    spend: Spend
    parts: list[str] = field(default_factory=list)
    decision: Decision | None = None


def parse_decision(text: str) -> Decision | None:
    """The model's JSON answer as a Decision, or None when it does not fit the schema."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removesuffix("```").strip())
    except ValueError:
        return None
    if not isinstance(data, dict) or set(data) != set(prompts.REACTION_SCHEMA["required"]):
        return None
    action, reaction, reasoning = data["action"], data["reaction"], data["reasoning"]
    confidence, shift = data["confidence"], data["sentiment_shift"]
    numbers_ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (confidence, shift)
    )
    if (
        action not in _ACTIONS
        or not isinstance(reaction, str)
        or not isinstance(reasoning, str)
        or len(reaction) > 200
        or len(reasoning) > 500
        or not numbers_ok
        or not 0 <= confidence <= 1
        or not -0.2 <= shift <= 0.2
    ):
        return None
    return Decision(action, reaction, reasoning, float(confidence), float(shift), action)


class LlmDomain:
    """Everything below the servicer; knows nothing of gRPC."""

    def __init__(
        self, store: LlmStore, providers: Providers, settings: LlmSettings, rng: random.Random
    ) -> None:
        self.store = store
        self.providers = providers
        self.budgets = BudgetBook(store, settings)
        self._settings = settings
        self._rng = rng

    # prompts

    def params(self, r: Request) -> GenerationParams:
        o = r.persona.output_rules
        max_tokens = o.max_tokens or self._settings.max_tokens or r.task.max_tokens
        if r.task is Task.POST and r.thread_length > 1 and not o.max_tokens:
            max_tokens = min(4096, max_tokens * r.thread_length)
        temperature = o.temperature if o.HasField("temperature") else self._settings.temperature
        schema = prompts.REACTION_SCHEMA if r.task is Task.REACTION else None
        seed = self._rng.randrange(2**31) if self._settings.random_seed is not None else None
        return GenerationParams(
            max_tokens=max_tokens,
            temperature=r.task.temperature if temperature is None else temperature,
            json_schema=schema,
            seed=seed,
        )

    def render(self, r: Request) -> Sent:
        name, model = self.providers.resolve(r.persona)
        params = self.params(r)
        messages = prompts.messages(r, self._rng)
        return Sent(name, model, messages, params.max_tokens, params.temperature)

    # idempotency

    async def once(
        self,
        agent: str,
        request_id: str | None,
        op: str,
        request: bytes,
        run: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        """run()'s answer, or the stored answer of the first call with this request_id."""
        if not request_id:
            return await run()
        fingerprint = f"{op}:{hashlib.sha256(request).hexdigest()}"
        found = await self.store.get_request(agent, request_id)
        if found is not None and found.create_time_us > now_us() - 86_400_000_000:
            if found.fingerprint != fingerprint:
                raise RequestIdReusedError(request_id, found.op)
            return found.response
        answer = await run()
        await self.store.put_request(
            StoredRequest(agent, request_id, op, fingerprint, answer, now_us())
        )
        return answer

    # model calls

    async def run(self, r: Request, remaining: Remaining) -> Result:
        """Compose for r: check the budget, call the model, apply rules, regenerate, charge."""
        agent = r.persona.agent.removeprefix("agents/")
        name, model = self.providers.resolve(r.persona)
        spend = Spend(name, model)
        outcome = "ok"
        try:
            await self.budgets.check(agent)
            provider = await self.providers.get(name, model)
            result = await self._attempts(r, provider, spend, remaining)
            spend = result.spend
            if result.decision is not None and result.decision.fallback:
                outcome = "invalid_output"
            return result
        except _SpentError as spent:
            spend = spent.spend
            outcome = _outcome(spent.__cause__)
            raise spent.__cause__ from None  # type: ignore[misc]
        except (BudgetExhaustedError, NotConfiguredError) as err:
            outcome = _outcome(err)
            raise
        finally:
            await self.budgets.record(agent, spend)
            metrics.outcome(agent, name, model, outcome)

    async def _generate(
        self,
        provider: Any,
        messages: list[ChatMessage],
        params: GenerationParams,
        remaining: Remaining,
    ) -> Generation:
        left = remaining()
        timeout = self._settings.call_timeout_s
        if left is not None:
            if left <= _MARGIN_S:
                raise DeadlineError
            timeout = min(timeout, left - _MARGIN_S)
        try:
            generation: Generation = await provider.generate(messages, params, timeout_s=timeout)
        except ProviderUnavailable:
            after = remaining()
            if after is not None and after <= 2 * _MARGIN_S:
                raise DeadlineError from None  # the caller's deadline, not the provider, ran out
            raise
        return generation

    async def _attempts(
        self, r: Request, provider: Provider, spend: Spend, remaining: Remaining
    ) -> Result:
        o = r.persona.output_rules
        tries = 1 + (o.max_regenerations or self._settings.max_regenerations)
        if r.task is Task.REACTION:
            tries = 1
        problems: list[str] = []
        for attempt in range(tries):
            params = self.params(r)
            messages = prompts.messages(r, self._rng, problems[-1] if problems else "")
            try:
                g = await self._generate(provider, messages, params, remaining)
            except (ProviderError, DeadlineError) as err:
                raise _SpentError(spend) from err
            spend = replace(
                spend,
                prompt_tokens=spend.prompt_tokens + g.prompt_tokens,
                completion_tokens=spend.completion_tokens + g.completion_tokens,
                attempts=spend.attempts + g.attempts,
                provider_ms=spend.provider_ms + g.provider_ms,
            )
            spend = replace(
                spend,
                cost_usd=self.budgets.cost(
                    spend.provider, spend.model, spend.prompt_tokens, spend.completion_tokens
                ),
            )
            sent = Sent(
                spend.provider, spend.model, messages, params.max_tokens, params.temperature
            )
            if r.task is Task.REACTION:
                return Result(sent, spend, decision=self._decide(r, g.text))
            parts, problem = self._check(
                r, g.text, last=attempt == tries - 1, cut=g.finish_reason == "length"
            )
            if not problem:
                return Result(sent, spend, parts=parts)
            log.info("attempt %d for %s rejected: %s", attempt + 1, r.persona.agent, problem)
            problems.append(problem)
        error: Exception
        if all(p == "near-duplicate of a recent post" for p in problems):
            error = NearDuplicateError(tries)
        else:
            error = UnusableError(tries, problems[-1])
        raise _SpentError(spend) from error

    def _limits(self, r: Request) -> rules.Limits:
        leaked: set[str] = set()
        if r.target is not None:
            leaked |= {p.author_user_id for p in (r.target, *r.target.conversation)}
        allowed_numbers = None
        if r.trade is not None:
            t = r.trade
            allowed_numbers = rules.normal_numbers(
                [t.input_amount, t.output_amount, t.price, t.input_symbol, t.output_symbol]
            )
        return rules.Limits(
            max_weight=256 if r.task is Task.QUOTE else 280,
            allowed_handles=frozenset(prompts.allowed_handles(r)),
            leaked_ids=frozenset(i for i in leaked if i),
            allowed_numbers=allowed_numbers,
        )

    def _check(self, r: Request, text: str, *, last: bool, cut: bool) -> tuple[list[str], str]:
        """The text's post(s) after the rules, or the problem; cut: the model hit max_tokens."""
        o = r.persona.output_rules
        style = rules.Style(
            o.lowercase,
            o.strip_hashtags,
            o.strip_emoji,
            tuple(o.banned_phrases),
            r.persona.display_name,
        )
        drafts = [text]
        if r.task is Task.POST and r.thread_length > 1:
            drafts = [d for d in _THREAD_SPLIT.split(text.strip()) if d.strip()]
            if len(drafts) < r.thread_length:
                return [], f"thread has {len(drafts)} of {r.thread_length} posts"
            cut = cut and len(drafts) == r.thread_length  # else the cut-off part is dropped
            drafts = drafts[: r.thread_length]
        limits = self._limits(r)
        parts = []
        for i, draft in enumerate(drafts):
            checked = rules.apply(draft, style, limits, cut=cut and i == len(drafts) - 1)
            if checked.problem:
                return [], checked.problem
            if rules.near_duplicate(
                checked.text, r.context.recent_posts, self._settings.near_duplicate_threshold
            ):
                return [], "near-duplicate of a recent post"
            parts.append(checked.text)
        if (
            not last
            and rules.starts_with(parts[0], o.regenerate_prefixes)
            and self._rng.random() < o.regenerate_probability
        ):
            return [], "starts with a regenerate prefix"
        return parts, ""

    def _decide(self, r: Request, text: str) -> Decision:
        decision = parse_decision(text)
        if decision is None:
            log.warning(
                "reaction of %s was not valid JSON for the schema; ignoring", r.persona.agent
            )
            return Decision("ignore", fallback=True)
        if not r.persona.HasField("interaction_probabilities"):
            return decision
        p = r.persona.interaction_probabilities
        keep = {"reply": p.reply, "quote": p.quote, "like": p.like}.get(decision.action, 1.0)
        if self._rng.random() < keep:
            return decision
        return replace(decision, action="ignore")


class _SpentError(Exception):
    """Carries the spending of a failed call up to where it is charged; cause is the error."""

    def __init__(self, spend: Spend) -> None:
        super().__init__()
        self.spend = spend


def _outcome(err: BaseException | None) -> str:
    return {
        BudgetExhaustedError: "budget_exhausted",
        NotConfiguredError: "not_configured",
        NearDuplicateError: "near_duplicate",
        UnusableError: "unusable",
        DeadlineError: "deadline",
        ProviderRejected: "rejected",
        ProviderRateLimited: "unavailable",
    }.get(type(err), "unavailable")
