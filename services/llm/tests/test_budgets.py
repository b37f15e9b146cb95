"""Budgets, usage records and metrics through the wire."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from prometheus_client import REGISTRY
from puppet.llm.v1 import llm_pb2 as m
from puppet.llm.v1 import llm_service_pb2 as pb
from puppet_llm.settings import ModelPrice
from puppet_runtime.testing import status_of

Stub = Any


def post(agent: str = "ada", **persona: Any) -> pb.ComposePostRequest:
    values = {"provider": m.PROVIDER_OPENAI, **persona}
    return pb.ComposePostRequest(persona=m.Persona(agent=f"agents/{agent}", **values))


async def failure(call: Any) -> tuple[grpc.StatusCode, Any, Any]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return status_of(caught.value)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_get_budget_has_defaults_and_todays_spending(serve: Any, scripted: Any) -> None:
    async with serve(provider=scripted(tokens=(100, 20)), default_daily_token_limit=500) as llm:
        await llm.ComposePost(post())
        got = (await llm.GetBudget(pb.GetBudgetRequest(name="agents/ada/budget"))).budget
    assert (got.name, got.daily_token_limit, got.daily_cost_limit_usd) == (
        "agents/ada/budget",
        500,
        1.0,
    )
    assert got.tokens_spent == 120
    assert got.reset_time.seconds % 86_400 == 0
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    assert 0 < got.reset_time.seconds - now.seconds <= 86_400


async def test_token_budget_exhausted_names_the_budget(serve: Any, scripted: Any) -> None:
    provider = scripted(tokens=(100, 20))
    async with serve(provider=provider) as llm:
        await llm.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=m.Budget(name="agents/ada/budget", daily_token_limit=200),
                update_mask=field_mask_pb2.FieldMask(paths=["daily_token_limit"]),
            )
        )
        await llm.ComposePost(post())
        await llm.ComposePost(post())  # 120 < 200 before the call: allowed, now 240
        code, info, _ = await failure(llm.ComposePost(post()))
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (info.reason, info.metadata["agent"], info.metadata["budget"]) == (
            "BUDGET_EXHAUSTED",
            "agents/ada",
            "tokens",
        )
        assert info.metadata["reset_time"].endswith("T00:00:00Z")
        assert len(provider.calls) == 2
        other = await llm.ComposePost(post("bea"))  # budgets are per persona
        assert other.composition.text


async def test_cost_budget_uses_per_model_prices(serve: Any, scripted: Any) -> None:
    prices = {"pricey": ModelPrice(input_per_1m=1_000_000, output_per_1m=2_000_000)}
    provider = scripted(model="pricey", tokens=(1, 1))
    async with serve(provider=provider, prices=prices, default_daily_cost_limit_usd=5) as llm:
        first = await llm.ComposePost(post())
        assert first.composition.usage.cost_usd == pytest.approx(3.0)
        await llm.ComposePost(post())
        code, info, _ = await failure(llm.ComposePost(post()))
        assert (code, info.metadata["budget"]) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "cost")
        budget = (await llm.GetBudget(pb.GetBudgetRequest(name="agents/ada/budget"))).budget
        assert budget.cost_spent_usd == pytest.approx(6.0)


async def test_local_and_fake_calls_cost_nothing(serve: Any, scripted: Any) -> None:
    prices = {"pricey": ModelPrice(input_per_1m=1e6, output_per_1m=1e6)}
    async with serve(provider=scripted(model="pricey"), prices=prices) as llm:
        got = await llm.ComposePost(post(provider=m.PROVIDER_LOCAL))
    assert got.composition.usage.cost_usd == 0
    assert got.composition.usage.provider == m.PROVIDER_LOCAL


async def test_update_budget_mask_validation_and_idempotency(llm: Stub) -> None:
    update = pb.UpdateBudgetRequest(
        budget=m.Budget(name="agents/ada/budget", daily_token_limit=10, daily_cost_limit_usd=2),
        request_id="b1",
    )
    first = await llm.UpdateBudget(update)
    assert (first.budget.daily_token_limit, first.budget.daily_cost_limit_usd) == (10, 2)
    assert await llm.UpdateBudget(update) == first
    update.budget.daily_token_limit = 11
    code, info, _ = await failure(llm.UpdateBudget(update))
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    only_cost = pb.UpdateBudgetRequest(
        budget=m.Budget(name="agents/ada/budget", daily_cost_limit_usd=3),
        update_mask=field_mask_pb2.FieldMask(paths=["daily_cost_limit_usd"]),
    )
    got = (await llm.UpdateBudget(only_cost)).budget
    assert (got.daily_token_limit, got.daily_cost_limit_usd) == (10, 3)
    for bad, field in [
        (m.Budget(name="agents/ada/budget", daily_token_limit=-1), "budget.daily_token_limit"),
        (
            m.Budget(name="agents/ada/budget", daily_cost_limit_usd=float("nan")),
            "budget.daily_cost_limit_usd",
        ),
        (m.Budget(name="agents/ada"), "budget.name"),
    ]:
        code, _, bad_request = await failure(llm.UpdateBudget(pb.UpdateBudgetRequest(budget=bad)))
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request.field_violations[0].field == field
    masked = pb.UpdateBudgetRequest(
        budget=m.Budget(name="agents/ada/budget"),
        update_mask=field_mask_pb2.FieldMask(paths=["tokens_spent"]),
    )
    _, _, bad_request = await failure(llm.UpdateBudget(masked))
    assert bad_request.field_violations[0].field == "update_mask.paths"


async def test_usage_records_page_newest_day_first(serve: Any, scripted: Any) -> None:
    async with serve(provider=scripted(tokens=(3, 2))) as llm:
        for agent in ("a1", "a2", "a3", "a1"):
            await llm.ComposePost(post(agent))
        records, token = [], ""
        while True:
            page = await llm.ListUsageRecords(
                pb.ListUsageRecordsRequest(parent="agents/-", page_size=2, page_token=token)
            )
            records += page.usage_records
            token = page.next_page_token
            if not token:
                break
        assert [(r.agent, r.calls, r.prompt_tokens, r.completion_tokens) for r in records] == [
            ("agents/a1", 2, 6, 4),
            ("agents/a2", 1, 3, 2),
            ("agents/a3", 1, 3, 2),
        ]
        assert records[0].day.seconds % 86_400 == 0
        mine = await llm.ListUsageRecords(pb.ListUsageRecordsRequest(parent="agents/a2"))
        assert [r.agent for r in mine.usage_records] == ["agents/a2"]
        code, _, bad = await failure(
            llm.ListUsageRecords(
                pb.ListUsageRecordsRequest(
                    parent="agents/a1", page_token=page.next_page_token or "x"
                )
            )
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        first = await llm.ListUsageRecords(
            pb.ListUsageRecordsRequest(parent="agents/-", page_size=1)
        )
        _, _, bad = await failure(
            llm.ListUsageRecords(
                pb.ListUsageRecordsRequest(parent="agents/a1", page_token=first.next_page_token)
            )
        )
        assert bad.field_violations[0].field == "page_token"
        _, _, bad = await failure(
            llm.ListUsageRecords(pb.ListUsageRecordsRequest(parent="agents/-", page_size=-1))
        )
        assert bad.field_violations[0].field == "page_size"


async def test_metrics_per_persona_and_model(serve: Any, scripted: Any) -> None:
    labels = {"agent": "metered", "provider": "openai", "model": "metric-model"}
    before = sample("puppet_llm_prompt_tokens_total", **labels)
    calls = sample("puppet_llm_calls_total", **labels, outcome="ok")
    async with serve(provider=scripted(model="metric-model", tokens=(7, 3))) as llm:
        await llm.ComposePost(post("metered"))
    assert sample("puppet_llm_prompt_tokens_total", **labels) == before + 7
    assert sample("puppet_llm_completion_tokens_total", **labels) >= 3
    assert sample("puppet_llm_calls_total", **labels, outcome="ok") == calls + 1
