"""One suite for every LlmStore adapter: SQLite (a real file) and MongoDB (nx-27017)."""

from __future__ import annotations

import pytest
from puppet_llm.store import BudgetRow, LlmStore, StoredRequest, UsageRow

DAY = 86_400_000_000


def usage(agent: str, day: int, model: str = "m", tokens: int = 10) -> UsageRow:
    return UsageRow(agent, day * DAY, "openai", model, 1, tokens, tokens // 2, 0.5)


async def test_budgets_are_created_and_replaced(store: LlmStore) -> None:
    assert await store.get_budget("a1") is None
    await store.put_budget(BudgetRow("a1", 100, 2.5))
    assert await store.get_budget("a1") == BudgetRow("a1", 100, 2.5)
    await store.put_budget(BudgetRow("a1", 0, 0.0))
    assert await store.get_budget("a1") == BudgetRow("a1", 0, 0.0)


async def test_usage_increments_per_day_model_and_sums_spending(store: LlmStore) -> None:
    await store.add_usage(usage("a1", 5))
    await store.add_usage(usage("a1", 5))
    await store.add_usage(usage("a1", 5, model="other", tokens=4))
    await store.add_usage(usage("a1", 4))
    await store.add_usage(usage("a2", 5))
    tokens, cost = await store.spent("a1", 5 * DAY)
    assert tokens == 15 + 15 + 6
    assert cost == pytest.approx(1.5)
    assert await store.spent("nobody", 5 * DAY) == (0, 0.0)
    rows = await store.list_usage("a1", 0, 10 * DAY, None, 10)
    assert [(r.day_us // DAY, r.model, r.calls, r.prompt_tokens) for r in rows] == [
        (5, "m", 2, 20),
        (5, "other", 1, 4),
        (4, "m", 1, 10),
    ]


async def test_usage_pages_newest_day_first_across_personas(store: LlmStore) -> None:
    for agent in ("b", "a", "c"):
        for day in (1, 2, 3):
            await store.add_usage(usage(agent, day))
    seen: list[tuple[int, str]] = []
    after = None
    while True:
        page = await store.list_usage(None, 0, 10 * DAY, after, 4)
        seen += [(r.day_us // DAY, r.agent) for r in page]
        if len(page) < 4:
            break
        after = page[-1].cursor
    assert seen == [(d, a) for d in (3, 2, 1) for a in ("a", "b", "c")]
    window = await store.list_usage(None, 2 * DAY, 3 * DAY, None, 10)
    assert {r.day_us // DAY for r in window} == {2}


async def test_requests_are_stored_replaced_and_pruned(store: LlmStore) -> None:
    old = StoredRequest("a1", "r1", "ComposePost", "fp", b"\x00answer", 1_000)
    await store.put_request(old)
    assert await store.get_request("a1", "r1") == old
    assert await store.get_request("a2", "r1") is None
    new = StoredRequest("a1", "r1", "ComposeReply", "fp2", b"second", 5_000)
    await store.put_request(new)
    assert await store.get_request("a1", "r1") == new
    await store.add_usage(usage("a1", 1))
    await store.add_usage(usage("a1", 3))
    await store.prune(usage_before_us=2 * DAY, requests_before_us=10_000)
    assert await store.get_request("a1", "r1") is None
    assert [r.day_us // DAY for r in await store.list_usage("a1", 0, 10 * DAY, None, 10)] == [3]
