"""The outbox store port, one suite over SQLite and MongoDB."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from puppet_social.store import (
    POSTING,
    Action,
    Change,
    InvalidTransition,
    NewItem,
    OutboxStore,
    RateWindow,
    State,
)

T0 = 1_800_000_000.0
StoreFactory = Callable[[], OutboxStore]


async def test_create_is_at_most_once_per_account_and_request_id(store: OutboxStore) -> None:
    first, created = await store.create(NewItem("alice", "r1", Action.POST, "hello"), T0)
    assert created
    assert (first.state, first.attempts, first.next_attempt_at) == (State.QUEUED, 0, T0)
    again, created = await store.create(NewItem("alice", "r1", Action.POST, "other"), T0 + 1)
    assert not created
    assert again == first
    other, created = await store.create(NewItem("bob", "r1", Action.LIKE, "", "42"), T0)
    assert created
    assert other.id != first.id
    assert await store.get(first.id) == first
    assert await store.get("missing") is None


async def test_transitions_are_compare_and_set(store: OutboxStore) -> None:
    item, _ = await store.create(NewItem("alice", "r1", Action.POST, "hi"), T0)
    claim = Change(claimed_at=T0 + 1, add_attempt=True)
    claimed = await store.transition(item.id, State.QUEUED, State.SENDING, T0 + 1, claim)
    assert claimed is not None
    assert (claimed.state, claimed.attempts, claimed.claimed_at) == (State.SENDING, 1, T0 + 1)
    assert claimed.updated_at == T0 + 1
    assert await store.transition(item.id, State.QUEUED, State.SENDING, T0 + 2, claim) is None
    sent = await store.transition(
        item.id, State.SENDING, State.SENT, T0 + 3, Change(network_post_id="99")
    )
    assert sent is not None
    assert (sent.state, sent.network_post_id, sent.attempts) == (State.SENT, "99", 1)
    with pytest.raises(InvalidTransition):
        await store.transition(item.id, State.SENT, State.QUEUED, T0 + 4)
    with pytest.raises(InvalidTransition):
        await store.transition(item.id, State.NEEDS_REVIEW, State.SENDING, T0 + 4)
    assert await store.transition("missing", State.QUEUED, State.SENDING, T0) is None


async def test_due_and_pages(store: OutboxStore) -> None:
    ids = []
    for n in range(5):
        state = State.NEEDS_REVIEW if n == 4 else State.QUEUED
        item, _ = await store.create(
            NewItem("alice", f"r{n}", Action.POST, f"t{n}", "", state), T0 + n
        )
        ids.append(item.id)
    later = Change(next_attempt_at=T0 + 100)
    assert await store.transition(ids[0], State.QUEUED, State.QUEUED, T0 + 5, later) is not None
    due = await store.due(T0 + 10, 10)
    assert [i.id for i in due] == ids[1:4]
    assert [i.id for i in await store.due(T0 + 10, 2)] == ids[1:3]
    assert [i.id for i in await store.due(T0 + 100, 10)] == [*ids[1:4], ids[0]]
    first = await store.list_items(account="alice", limit=2)
    rest = await store.list_items(account="alice", after_id=first[-1].id, limit=10)
    assert [i.id for i in [*first, *rest]] == ids
    review = await store.list_items(account="alice", states=[State.NEEDS_REVIEW])
    assert [i.id for i in review] == [ids[4]]
    assert await store.list_items(account="bob") == []


async def test_count_sent(store: OutboxStore) -> None:
    for n, action in enumerate([Action.POST, Action.REPLY, Action.LIKE]):
        item, _ = await store.create(NewItem("alice", f"r{n}", action, "t", "1"), T0)
        await store.transition(item.id, State.QUEUED, State.SENDING, T0 + n)
        await store.transition(item.id, State.SENDING, State.SENT, T0 + n)
    assert await store.count_sent("alice", POSTING, T0) == 2
    assert await store.count_sent("alice", POSTING, T0 + 1) == 1
    assert await store.count_sent("bob", POSTING, T0) == 0


async def test_rate_windows_persist(store_factory: StoreFactory) -> None:
    window = RateWindow("alice", "POST /2/tweets", 17, 0, T0 + 900, 17, 3, T0 + 86400, T0)
    first = store_factory()
    await first.open()
    assert await first.get_window("alice", "POST /2/tweets") is None
    await first.put_window(window)
    await first.put_window(window)
    await first.close()
    second = store_factory()
    await second.open()
    assert await second.get_window("alice", "POST /2/tweets") == window
    assert await second.get_window("alice", "GET /2/tweets/:id") is None
    await second.close()
