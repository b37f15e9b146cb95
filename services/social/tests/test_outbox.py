"""The outbox against the real sandbox network: at most once, review, errors, crashes, 429s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pytest
from puppet_social.network import AccountRef
from puppet_social.network.sandbox import SandboxNetwork
from puppet_social.outbox import Outbox
from puppet_social.planner import RatePlanner, TierPolicy
from puppet_social.store import Action, Change, State
from puppet_social.store.sqlite import SqliteStore

POLICIES = {"free": TierPolicy(posts_per_24h=None, sends_per_second=100)}


class FakeClock(Protocol):
    """The conftest clock: a callable with a settable `now`."""

    now: float

    def __call__(self) -> float: ...


@pytest.fixture
async def outbox(
    sqlite_store: SqliteStore, sandbox: SandboxNetwork, clock: Callable[[], float]
) -> Outbox:
    await sandbox.create_account("alice", tier="unlimited")
    planner = RatePlanner(sqlite_store, clock, POLICIES)
    return Outbox(sqlite_store, sandbox, planner, clock)


async def test_repeated_request_ids_post_once(outbox: Outbox, sandbox: SandboxNetwork) -> None:
    first, created = await outbox.enqueue("alice", "r1", Action.POST, text="hello")
    again, created_again = await outbox.enqueue("alice", "r1", Action.POST, text="hello")
    assert created
    assert not created_again
    assert again.id == first.id
    assert await outbox.send_due() == 1
    assert await outbox.send_due() == 0
    await outbox.enqueue("alice", "r1", Action.POST, text="hello")
    assert await outbox.send_due() == 0
    posts = await sandbox.posts_of("alice")
    assert [p.text for p in posts] == ["hello"]
    (item,) = await outbox.items()
    assert (item.state, item.network_post_id, item.attempts) == (State.SENT, posts[0].id, 1)


async def test_reply_like_repost_delete(outbox: Outbox, sandbox: SandboxNetwork) -> None:
    await outbox.enqueue("alice", "p", Action.POST, text="root")
    await outbox.send_due()
    (root,) = await sandbox.posts_of("alice")
    await outbox.enqueue("alice", "r", Action.REPLY, text="reply", target_post_id=root.id)
    await outbox.enqueue("alice", "l", Action.LIKE, target_post_id=root.id)
    await outbox.enqueue("alice", "rp", Action.REPOST, target_post_id=root.id)
    await outbox.enqueue("alice", "gone", Action.LIKE, target_post_id="123")
    assert await outbox.send_due() == 4
    reply = (await sandbox.posts_of("alice"))[0]
    assert reply.in_reply_to_id == root.id
    await outbox.enqueue("alice", "d", Action.DELETE, target_post_id=reply.id)
    await outbox.send_due()
    states = {i.request_id: (i.state, i.error_reason) for i in await outbox.items()}
    assert states["gone"] == (State.FAILED, "POST_NOT_FOUND")
    assert {states[k][0] for k in ("p", "r", "l", "rp", "d")} == {State.SENT}
    assert [p.id for p in await sandbox.posts_of("alice")] == [root.id]
    with pytest.raises(ValueError, match="text"):
        await outbox.enqueue("alice", "x", Action.POST)
    with pytest.raises(ValueError, match="target_post_id"):
        await outbox.enqueue("alice", "y", Action.LIKE)


async def test_review_approve_and_reject(outbox: Outbox, sandbox: SandboxNetwork) -> None:
    yes, _ = await outbox.enqueue("alice", "a", Action.POST, text="approved", review=True)
    no, _ = await outbox.enqueue("alice", "b", Action.POST, text="rejected", review=True)
    assert yes.state is State.NEEDS_REVIEW
    assert await outbox.send_due() == 0
    approved = await outbox.approve(yes.id)
    assert approved is not None
    assert approved.state is State.APPROVED
    rejected = await outbox.reject(no.id, "OFF_TOPIC")
    assert rejected is not None
    assert (rejected.state, rejected.error_reason) == (State.REJECTED, "OFF_TOPIC")
    assert await outbox.approve(no.id) is None
    assert await outbox.reject(yes.id) is None
    assert await outbox.send_due() == 1
    assert [p.text for p in await sandbox.posts_of("alice")] == ["approved"]


async def test_duplicate_content_fails_and_is_never_retried(
    outbox: Outbox, sandbox: SandboxNetwork, clock: FakeClock
) -> None:
    await sandbox.create_post(AccountRef("alice"), "same words")
    await outbox.enqueue("alice", "r1", Action.POST, text="same words")
    assert await outbox.send_due() == 1
    clock.now += 3600
    assert await outbox.send_due() == 0
    (failed,) = await outbox.items()
    assert (failed.state, failed.error_reason, failed.attempts) == (
        State.FAILED,
        "DUPLICATE_CONTENT",
        1,
    )
    assert len(await sandbox.posts_of("alice")) == 1


async def test_unknown_account_is_unauthorized(outbox: Outbox) -> None:
    await outbox.enqueue("nobody", "r1", Action.POST, text="hi")
    await outbox.send_due()
    (item,) = await outbox.items()
    assert (item.state, item.error_reason) == (State.FAILED, "UNAUTHORIZED")


async def test_crash_after_send_reconciles_to_sent_without_a_second_post(
    outbox: Outbox, sqlite_store: SqliteStore, sandbox: SandboxNetwork, clock: FakeClock
) -> None:
    posted, _ = await outbox.enqueue("alice", "posted", Action.POST, text="went out")
    lost, _ = await outbox.enqueue("alice", "lost", Action.POST, text="never went out")
    for item in (posted, lost):
        claim = Change(claimed_at=clock.now, add_attempt=True)
        await sqlite_store.transition(item.id, State.QUEUED, State.SENDING, clock.now, claim)
    # The crash: the first post reached the network, its commit did not.
    clock.now += 1
    out = await sandbox.create_post(AccountRef("alice"), "went out")
    assert out.post is not None
    clock.now += 10
    assert await outbox.reconcile() == 2
    assert await outbox.send_due() == 1
    items = {i.request_id: i for i in await outbox.items()}
    assert (items["posted"].state, items["posted"].network_post_id) == (State.SENT, out.post.id)
    assert items["lost"].state is State.SENT
    texts = sorted(p.text for p in await sandbox.posts_of("alice"))
    assert texts == ["never went out", "went out"]


async def test_a_429_storm_ends_with_every_post_sent_once(
    sqlite_store: SqliteStore, sandbox: SandboxNetwork, clock: FakeClock
) -> None:
    alice = await sandbox.create_account("tiny_alice", tier="tiny")
    # Another client used the whole window: the outbox's first send meets a 429.
    await sandbox.create_post(alice, "elsewhere 1")
    await sandbox.create_post(alice, "elsewhere 2")
    planner = RatePlanner(sqlite_store, clock, POLICIES)
    outbox = Outbox(sqlite_store, sandbox, planner, clock)
    for n in range(7):
        await outbox.enqueue("tiny_alice", f"r{n}", Action.POST, text=f"post {n}")
        await outbox.enqueue("tiny_alice", f"r{n}", Action.POST, text=f"post {n}")
    calls = 0
    for _ in range(50):
        calls += await outbox.send_due()
        waiting = await sqlite_store.list_items(states=[State.QUEUED])
        if not waiting:
            break
        clock.now = max(clock.now, min(i.next_attempt_at for i in waiting))
    items = await outbox.items()
    assert {i.state for i in items} == {State.SENT}
    assert len(items) == 7
    assert calls == 8  # one 429, then exactly one call per post
    texts = [p.text for p in await sandbox.posts_of("tiny_alice", limit=100)]
    assert sorted(texts) == sorted([*(f"post {n}" for n in range(7)), "elsewhere 1", "elsewhere 2"])
