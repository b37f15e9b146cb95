"""LlmServicer: validate the request, call the domain, answer with protos."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from google.protobuf.message import Message
from puppet.llm.v1 import llm_service_pb2 as pb
from puppet.llm.v1 import llm_service_pb2_grpc as rpc
from puppet_runtime import Context, paging

from puppet_llm import convert, errors, validation
from puppet_llm.budgets import DAY_US, now_us
from puppet_llm.domain import LlmDomain, Result
from puppet_llm.failures import (
    BudgetExhaustedError,
    DeadlineError,
    NearDuplicateError,
    NotConfiguredError,
    RequestIdReusedError,
    UnusableError,
)
from puppet_llm.prompts import Request, Task
from puppet_llm.providers import ProviderRateLimited, ProviderRejected, ProviderUnavailable
from puppet_llm.store import BudgetRow
from puppet_llm.validation import Checks

M = TypeVar("M", bound=Message)
_TASKS = {
    pb.TASK_UNSPECIFIED: Task.POST,
    pb.TASK_POST: Task.POST,
    pb.TASK_REPLY: Task.REPLY,
    pb.TASK_QUOTE: Task.QUOTE,
    pb.TASK_REACTION: Task.REACTION,
    pb.TASK_TRADE_ANNOUNCEMENT: Task.TRADE,
}
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_BUDGET_PATHS = ("daily_token_limit", "daily_cost_limit_usd")
_USAGE_DEFAULT_US = 30 * DAY_US


@contextmanager
def translated(provider: str) -> Iterator[None]:
    """Domain and provider failures to this service's errors."""
    try:
        yield
    except RequestIdReusedError as err:
        raise errors.request_id_reused(err.request_id, err.op) from None
    except BudgetExhaustedError as err:
        raise errors.budget_exhausted(err.agent, err.budget, err.reset_time) from None
    except NotConfiguredError as err:
        raise errors.provider_not_configured(err.provider, err.why) from None
    except NearDuplicateError as err:
        raise errors.near_duplicate(err.attempts) from None
    except UnusableError as err:
        raise errors.text_unusable(err.attempts, err.problem) from None
    except DeadlineError:
        raise errors.deadline_exceeded() from None
    except ProviderRejected as err:
        raise errors.provider_rejected(provider, _status(err, "rejected")) from None
    except ProviderRateLimited as err:
        raise errors.provider_unavailable(provider, "429", err.retry_after_s) from None
    except ProviderUnavailable as err:
        raise errors.provider_unavailable(provider, _status(err, "unavailable"), None) from None


def _status(err: Exception, default: str) -> str:
    """The provider's HTTP status when the adapter reports one (attribute or "HTTP nnn")."""
    status = getattr(err, "status_code", None) or getattr(err, "status", None)
    if status:
        return str(status)
    found = _HTTP_STATUS.search(str(err))
    return found.group(1) if found else default


def _without_request_id(request: Message) -> bytes:
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return copy.SerializeToString(deterministic=True)


def _checked_request(c: Checks, request: Any, task: Task) -> Request:
    validation.persona(c, "persona", request.persona, request.HasField("persona"))
    validation.context(c, "context", request.context)
    has_target = task in (Task.REPLY, Task.QUOTE, Task.REACTION)
    if has_target:
        validation.target(c, "target", request.target, request.HasField("target"))
        validation.counterparty(
            c, "counterparty", request.counterparty, request.HasField("counterparty")
        )
    if task is Task.TRADE:
        validation.trade(c, "trade", request.trade, request.HasField("trade"))
    return Request(
        task=task,
        persona=request.persona,
        context=request.context,
        target=request.target if has_target else None,
        counterparty=request.counterparty
        if has_target and request.HasField("counterparty")
        else None,
        trade=request.trade if task is Task.TRADE else None,
    )


class LlmServicer(rpc.LlmServiceServicer):
    """Thin: every method is validate, delegate, convert."""

    def __init__(self, domain: LlmDomain) -> None:
        self._d = domain

    async def _compose(
        self,
        request: Any,
        context: Context,
        r: Request,
        c: Checks,
        kind: type[M],
        answer: Callable[[Result], M],
    ) -> M:
        key = c.request_id("request_id", request.request_id)
        c.done()
        agent = r.persona.agent.removeprefix("agents/")
        provider, _ = self._d.providers.resolve(r.persona)

        async def run() -> bytes:
            result = await self._d.run(r, context.time_remaining)
            return answer(result).SerializeToString()

        op = type(request).__name__.removesuffix("Request")
        with translated(provider):
            raw = await self._d.once(agent, key, op, _without_request_id(request), run)
        return kind.FromString(raw)

    async def ComposePost(
        self, request: pb.ComposePostRequest, context: Context
    ) -> pb.ComposePostResponse:
        c = Checks()
        r = _checked_request(c, request, Task.POST)
        c.text("topic", request.topic, high=280)
        if not 0 <= request.thread_length <= 25:
            c.fail("thread_length", f"must be 0-25, got {request.thread_length}")
        length = max(1, request.thread_length)
        r = Request(Task.POST, r.persona, r.context, topic=request.topic, thread_length=length)

        def answer(result: Result) -> pb.ComposePostResponse:
            parts = result.parts if length > 1 else []
            return pb.ComposePostResponse(
                composition=convert.composition(result), thread_parts=parts
            )

        return await self._compose(request, context, r, c, pb.ComposePostResponse, answer)

    async def ComposeReply(
        self, request: pb.ComposeReplyRequest, context: Context
    ) -> pb.ComposeReplyResponse:
        c = Checks()
        r = _checked_request(c, request, Task.REPLY)
        return await self._compose(
            request,
            context,
            r,
            c,
            pb.ComposeReplyResponse,
            lambda res: pb.ComposeReplyResponse(composition=convert.composition(res)),
        )

    async def ComposeQuote(
        self, request: pb.ComposeQuoteRequest, context: Context
    ) -> pb.ComposeQuoteResponse:
        c = Checks()
        r = _checked_request(c, request, Task.QUOTE)
        return await self._compose(
            request,
            context,
            r,
            c,
            pb.ComposeQuoteResponse,
            lambda res: pb.ComposeQuoteResponse(composition=convert.composition(res)),
        )

    async def DecideReaction(
        self, request: pb.DecideReactionRequest, context: Context
    ) -> pb.DecideReactionResponse:
        c = Checks()
        r = _checked_request(c, request, Task.REACTION)

        def answer(res: Result) -> pb.DecideReactionResponse:
            assert res.decision is not None
            return pb.DecideReactionResponse(
                decision=convert.decision(res.decision),
                prompt=convert.prompt(res.sent),
                usage=convert.usage(res),
            )

        return await self._compose(request, context, r, c, pb.DecideReactionResponse, answer)

    async def ComposeTradeAnnouncement(
        self, request: pb.ComposeTradeAnnouncementRequest, context: Context
    ) -> pb.ComposeTradeAnnouncementResponse:
        c = Checks()
        r = _checked_request(c, request, Task.TRADE)
        return await self._compose(
            request,
            context,
            r,
            c,
            pb.ComposeTradeAnnouncementResponse,
            lambda res: pb.ComposeTradeAnnouncementResponse(composition=convert.composition(res)),
        )

    async def RenderPrompt(
        self, request: pb.RenderPromptRequest, context: Context
    ) -> pb.RenderPromptResponse:
        c = Checks()
        c.enum("task", request.task, pb.Task)
        task = _TASKS.get(request.task, Task.POST)
        r = _checked_request(c, request, task)
        c.text("topic", request.topic, high=280)
        c.done()
        if task is Task.POST:
            r = Request(Task.POST, r.persona, r.context, topic=request.topic)
        sent = self._d.render(r)
        return pb.RenderPromptResponse(
            prompt=convert.prompt(sent), system_prompt=sent.messages[0].content
        )

    async def GetBudget(
        self, request: pb.GetBudgetRequest, context: Context
    ) -> pb.GetBudgetResponse:
        c = Checks()
        agent = c.agent("name", request.name, "/budget")
        c.done()
        return pb.GetBudgetResponse(budget=convert.budget(await self._d.budgets.get(agent)))

    async def UpdateBudget(
        self, request: pb.UpdateBudgetRequest, context: Context
    ) -> pb.UpdateBudgetResponse:
        c = Checks()
        c.required("budget", request.HasField("budget"))
        b = request.budget
        agent = c.agent("budget.name", b.name, "/budget")
        paths = list(request.update_mask.paths) or list(_BUDGET_PATHS)
        for path in paths:
            if path not in _BUDGET_PATHS:
                c.fail("update_mask.paths", f"{path[:80]!r} is not one of {list(_BUDGET_PATHS)}")
        if b.daily_token_limit < 0:
            c.fail("budget.daily_token_limit", "must not be negative")
        if not math.isfinite(b.daily_cost_limit_usd) or b.daily_cost_limit_usd < 0:
            c.fail("budget.daily_cost_limit_usd", "must be a finite number, not negative")
        key = c.request_id("request_id", request.request_id)
        c.done()

        async def run() -> bytes:
            old = await self._d.budgets.limits(agent)
            row = BudgetRow(
                agent,
                b.daily_token_limit if "daily_token_limit" in paths else old.daily_token_limit,
                b.daily_cost_limit_usd
                if "daily_cost_limit_usd" in paths
                else old.daily_cost_limit_usd,
            )
            budget = convert.budget(await self._d.budgets.update(row))
            return pb.UpdateBudgetResponse(budget=budget).SerializeToString()

        with translated(""):
            raw = await self._d.once(agent, key, "UpdateBudget", _without_request_id(request), run)
        reply = pb.UpdateBudgetResponse.FromString(raw)
        if key:  # a replay still shows today's spending
            reply.budget.CopyFrom(convert.budget(await self._d.budgets.get(agent)))
        return reply

    async def ListUsageRecords(
        self, request: pb.ListUsageRecordsRequest, context: Context
    ) -> pb.ListUsageRecordsResponse:
        c = Checks()
        agent: str | None = None
        if request.parent != "agents/-":
            agent = c.agent("parent", request.parent)
        size = c.page_size("page_size", request.page_size)
        now = now_us()
        has_start, has_end = request.HasField("start_time"), request.HasField("end_time")
        end = c.timestamp("end_time", request.end_time) if has_end else now
        start = (
            c.timestamp("start_time", request.start_time) if has_start else end - _USAGE_DEFAULT_US
        )
        if start >= end and not c.violations:
            c.fail("start_time", "must be before end_time")
        query = "|".join(
            (
                "usage",
                request.parent,
                str(start) if has_start else "-",
                str(end) if has_end else "-",
            )
        )
        cursor = c.page_token("page_token", query, request.page_token)
        if cursor is not None and not _is_cursor(cursor):
            c.fail("page_token", "is not a token this service issued")
        c.done()
        after = None if cursor is None else (cursor[0], cursor[1], cursor[2], cursor[3])
        rows = await self._d.budgets.usage(agent, start, end, after, size + 1)
        token = paging.encode(query, list(rows[size - 1].cursor)) if len(rows) > size else ""
        return pb.ListUsageRecordsResponse(
            usage_records=[convert.usage_record(r) for r in rows[:size]], next_page_token=token
        )


def _is_cursor(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and type(value[0]) is int
        and all(isinstance(v, str) for v in value[1:])
    )
