"""The outbox store port, one suite over SQLite and MongoDB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from puppet_social.network import PostRecord
from puppet_social.store import (
    POSTING,
    Action,
    Change,
    InvalidTransition,
    Mention,
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


async def test_concurrent_writes_stay_at_most_once(store: OutboxStore) -> None:
    # Concurrent creates and claims may share one transaction (SQLite's group commit): every
    # create still answers its own row, a repeated request_id the first one, and of two claims
    # racing for one item exactly one wins.
    news = [NewItem("alice", f"r{n % 40}", Action.POST, f"t{n % 40}") for n in range(80)]
    made = await asyncio.gather(*(store.create(new, T0) for new in news))
    assert sum(created for _, created in made) == 40
    by_request = {item.request_id: item.id for item, created in made if created}
    assert all(item.id == by_request[item.request_id] for item, _ in made)
    claim = Change(claimed_at=T0 + 1, add_attempt=True)
    ids = [*by_request.values()] * 2
    claims = await asyncio.gather(
        *(store.transition(i, State.QUEUED, State.SENDING, T0 + 1, claim) for i in ids)
    )
    won = [item for item in claims if item is not None]
    assert sorted(item.id for item in won) == sorted(by_request.values())
    assert all(item.attempts == 1 for item in won)
    stored = await store.list_items(account="alice", states=[State.SENDING], limit=100)
    assert len(stored) == 40


async def test_an_item_created_sending_is_claimed(store: OutboxStore) -> None:
    new = NewItem("alice", "r1", Action.POST, "now", "", State.SENDING)
    item, created = await store.create(new, T0)
    assert created
    assert (item.state, item.attempts, item.claimed_at) == (State.SENDING, 1, T0)
    assert await store.get(item.id) == item
    assert [i.id for i in await store.list_items(states=[State.SENDING])] == [item.id]


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


def _post(post_id: str, text: str = "hi @alice", reply_to: str | None = None) -> PostRecord:
    return PostRecord(
        id=post_id,
        author_id="7",
        author_handle="bob",
        text=text,
        created_at=datetime(2027, 1, 15, 12, 0, 0, 123456, tzinfo=UTC),
        conversation_id=reply_to or post_id,
        in_reply_to_id=reply_to,
        mentioned_handles=("alice", "carol"),
    )


def _name(base: str) -> str:
    """An account name of its own per test (the MongoDB server may outlive a test's database)."""
    return f"{base}-{uuid.uuid4().hex[:8]}"


async def test_mentions_are_stored_once_and_ordered_numerically(store: OutboxStore) -> None:
    alice, carol = _name("alice"), _name("carol")
    posts = [_post("9"), _post("10", "@alice re", reply_to="9"), _post("100")]
    added = await store.add_mentions(alice, posts, T0, keep=10)
    assert added == [Mention(alice, post, T0) for post in posts]
    again = await store.add_mentions(alice, [posts[1], _post("101")], T0 + 1, keep=10)
    assert [m.post.id for m in again] == ["101"]
    await store.add_mentions(carol, [posts[1]], T0 + 2, keep=10)
    oldest_first = await store.list_mentions(account=alice)
    assert [m.post.id for m in oldest_first] == ["9", "10", "100", "101"]
    assert oldest_first[1] == Mention(alice, posts[1], T0)
    newest = await store.list_mentions(account=alice, newest_first=True, limit=2)
    assert [m.post.id for m in newest] == ["101", "100"]
    page = await store.list_mentions(account=alice, newest_first=True, before_id="100")
    assert [m.post.id for m in page] == ["10", "9"]
    after = await store.list_mentions(account=alice, after_id="10")
    assert [m.post.id for m in after] == ["100", "101"]
    both = await store.list_mentions(after_id="9", before_id="100")
    assert {(m.account, m.post.id) for m in both} == {(alice, "10"), (carol, "10")}


async def test_mention_seen_set_is_bounded_and_still_deduplicates(store: OutboxStore) -> None:
    alice = _name("alice")
    await store.add_mentions(alice, [_post("1"), _post("2"), _post("3")], T0, keep=2)
    assert [m.post.id for m in await store.list_mentions(account=alice)] == ["2", "3"]
    again = await store.add_mentions(alice, [_post("1"), _post("3"), _post("4")], T0, keep=2)
    assert [m.post.id for m in again] == ["4"]
    assert [m.post.id for m in await store.list_mentions(account=alice)] == ["3", "4"]


async def test_mention_cursor_persists(store_factory: StoreFactory) -> None:
    alice, bob = _name("alice"), _name("bob")
    first = store_factory()
    await first.open()
    assert await first.get_mention_cursor(alice) is None
    await first.add_mentions(alice, [_post("5"), _post("6")], T0, keep=1)
    assert await first.get_mention_cursor(alice) is None
    await first.put_mention_cursor(alice, "6")
    await first.put_mention_cursor(bob, "3")
    await first.put_mention_cursor(bob, "4")
    await first.close()
    second = store_factory()
    await second.open()
    assert await second.get_mention_cursor(alice) == "6"
    assert await second.get_mention_cursor(bob) == "4"
    assert await second.add_mentions(alice, [_post("5"), _post("6")], T0, keep=1) == []
    await second.close()
