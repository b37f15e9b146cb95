"""The mention poller over the real sandbox network and SQLite store, with a hand-moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import pytest
from puppet_social.mentions import MENTIONS, Mention, MentionPoller, MentionsLagged
from puppet_social.network import AccountRef, PostRecord
from puppet_social.network.sandbox import SandboxNetwork
from puppet_social.planner import RatePlanner
from puppet_social.store.sqlite import SqliteStore

T0 = 1_800_000_000.0


class Clock(Protocol):
    """The conftest clock: a callable with a settable `now`."""

    now: float

    def __call__(self) -> float: ...


def _poller(
    store: SqliteStore, network: SandboxNetwork, clock: Clock, **kwargs: object
) -> MentionPoller:
    planner = RatePlanner(store, clock, default_tier="unlimited")
    return MentionPoller(store, network, planner, clock, **kwargs)  # type: ignore[arg-type]


async def _say(network: SandboxNetwork, who: AccountRef, text: str) -> PostRecord:
    post = (await network.create_post(who, text)).post
    assert post is not None
    return post


def _ids(mentions: list[Mention]) -> list[str]:
    return [m.post.id for m in mentions]


async def _take(stream: AsyncIterator[Mention], count: int) -> list[Mention]:
    return [await asyncio.wait_for(anext(stream), 5) for _ in range(count)]


@pytest.fixture
async def pair(sandbox: SandboxNetwork) -> tuple[AccountRef, AccountRef]:
    alice = await sandbox.create_account("alice", tier="unlimited")
    bob = await sandbox.create_account("bob", tier="unlimited")
    return alice, bob


async def test_personas_mention_each_other_and_restarts_repeat_nothing(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    alice, bob = pair
    first = await _say(sandbox, bob, "hello @alice")
    back = await _say(sandbox, alice, "@bob hi yourself")
    poller = _poller(sqlite_store, sandbox, clock)
    assert _ids(await poller.poll_once("alice")) == [first.id]
    got = await poller.poll_once("bob")
    assert _ids(got) == [back.id]
    assert (got[0].account, got[0].post.author_handle, got[0].received_at) == ("bob", "alice", T0)
    assert await sqlite_store.get_mention_cursor("alice") == first.id

    clock.now += 60
    second = await _say(sandbox, bob, "@alice still there?")
    restarted = _poller(sqlite_store, sandbox, clock)
    assert _ids(await restarted.poll_once("alice")) == [second.id]
    clock.now += 60
    assert await restarted.poll_once("alice") == []
    assert await restarted.poll_once("bob") == []
    listed = await restarted.recent("alice", limit=10)
    assert _ids(list(listed)) == [second.id, first.id]
    assert _ids(list(await restarted.recent(None, after_id=first.id))) == [second.id, back.id]


async def test_a_lost_cursor_delivers_nothing_twice(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    alice, bob = pair
    own = await _say(sandbox, alice, "my post")
    seen = [await _say(sandbox, bob, f"@alice n{i}") for i in range(3)]
    poller = _poller(sqlite_store, sandbox, clock)
    assert _ids(await poller.poll_once("alice")) == [p.id for p in seen]
    # A crash after storing the mentions but before saving the cursor: the network repeats them.
    await sqlite_store.put_mention_cursor("alice", own.id)
    restarted = _poller(sqlite_store, sandbox, clock)
    live = restarted.subscribe("alice", None)
    waiting = asyncio.ensure_future(anext(live))
    await asyncio.sleep(0)
    clock.now += 60
    assert await restarted.poll_once("alice") == []
    assert await sqlite_store.get_mention_cursor("alice") == seen[-1].id
    newer = await _say(sandbox, bob, "@alice n3")
    clock.now += 60
    assert _ids(await restarted.poll_once("alice")) == [newer.id]
    assert (await asyncio.wait_for(waiting, 5)).post.id == newer.id
    assert await sqlite_store.get_mention_cursor("alice") == newer.id
    await live.aclose()


async def test_rate_limits_are_honoured(
    tmp_path: Path, sandbox: SandboxNetwork, sqlite_store: SqliteStore, clock: Clock
) -> None:
    await sandbox.create_account("alice")  # free: one mentions read per 15 minutes
    bob = await sandbox.create_account("bob", tier="unlimited")
    poller = _poller(sqlite_store, sandbox, clock)
    assert await poller.poll_once("alice") == []
    assert poller.next_poll_at("alice") == T0 + 60
    window = await sqlite_store.get_window("alice", MENTIONS)
    assert window is not None
    assert (window.remaining, window.reset_at) == (0, T0 + 900)
    mention = await _say(sandbox, bob, "@alice are you there")
    clock.now += 60
    # The planner knows the window is used up: "later, at T", without calling the network.
    assert await poller.poll_once("alice") == []
    assert poller.next_poll_at("alice") == T0 + 900

    # A poller whose planner has no window yet gets RateLimited and waits for the reset.
    other = SqliteStore(tmp_path / "other.sqlite3")
    await other.open()
    try:
        fresh = _poller(other, sandbox, clock)
        assert await fresh.poll_once("alice") == []
        assert fresh.next_poll_at("alice") == T0 + 900
        clock.now = T0 + 900
        assert _ids(await poller.poll_once("alice")) == [mention.id]
    finally:
        await other.close()


async def test_network_errors_back_off_exponentially(
    sandbox: SandboxNetwork, sqlite_store: SqliteStore, clock: Clock
) -> None:
    poller = _poller(sqlite_store, sandbox, clock, interval_s=60.0, max_backoff_s=200.0)
    waits = []
    for _ in range(4):
        assert await poller.poll_once("ghost") == []  # unknown account: Unauthorized
        at = poller.next_poll_at("ghost")
        assert at is not None
        waits.append(at - clock.now)
        clock.now = at
    assert waits == [60.0, 120.0, 200.0, 200.0]


async def test_accounts_are_staggered(
    sandbox: SandboxNetwork, sqlite_store: SqliteStore, clock: Clock
) -> None:
    poller = _poller(sqlite_store, sandbox, clock, accounts=["a", "b", "c"], stagger_s=7.0)
    assert [poller.next_poll_at(a) for a in poller.accounts] == [T0, T0 + 7, T0 + 14]


async def test_two_subscribers_and_an_account_filter(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    alice, bob = pair
    poller = _poller(sqlite_store, sandbox, clock)
    everyone = poller.subscribe(None, None)
    only_bob = poller.subscribe("bob", None)
    first_all = asyncio.ensure_future(_take(everyone, 2))
    first_bob = asyncio.ensure_future(_take(only_bob, 1))
    await asyncio.sleep(0)
    to_alice = await _say(sandbox, bob, "@alice one")
    to_bob = await _say(sandbox, alice, "@bob two")
    await poller.poll_once("alice")
    await poller.poll_once("bob")
    assert _ids(await first_all) == [to_alice.id, to_bob.id]
    assert _ids(await first_bob) == [to_bob.id]
    await everyone.aclose()
    await only_bob.aclose()


async def test_replay_after_id_then_live(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    _, bob = pair
    poller = _poller(sqlite_store, sandbox, clock)
    old = [await _say(sandbox, bob, f"@alice old {i}") for i in range(3)]
    await poller.poll_once("alice")
    stream = poller.subscribe("alice", old[0].id)
    assert _ids(await _take(stream, 2)) == [old[1].id, old[2].id]
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    new = await _say(sandbox, bob, "@alice new")
    clock.now += 60
    await poller.poll_once("alice")
    assert (await asyncio.wait_for(waiting, 5)).post.id == new.id
    await stream.aclose()


async def test_a_slow_subscriber_is_closed_not_waited_for(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    _, bob = pair
    poller = _poller(sqlite_store, sandbox, clock, queue_size=1)
    slow = poller.subscribe("alice", None)
    waiting = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)
    sent = [await _say(sandbox, bob, f"@alice {i}") for i in range(3)]
    assert len(await poller.poll_once("alice")) == 3
    assert (await asyncio.wait_for(waiting, 5)).post.id == sent[0].id
    with pytest.raises(MentionsLagged):
        await asyncio.wait_for(anext(slow), 5)
    # It resumes from the last id it handled, through the store's replay.
    resumed = poller.subscribe("alice", sent[0].id)
    assert _ids(await _take(resumed, 2)) == [p.id for p in sent[1:]]
    await resumed.aclose()


async def test_run_polls_until_stopped(
    sandbox: SandboxNetwork,
    sqlite_store: SqliteStore,
    clock: Clock,
    pair: tuple[AccountRef, AccountRef],
) -> None:
    _, bob = pair
    mention = await _say(sandbox, bob, "@alice ping")
    poller = _poller(sqlite_store, sandbox, clock, accounts=["alice"])
    stop = asyncio.Event()
    running = asyncio.create_task(poller.run(stop, tick_s=0.01))
    stream = poller.subscribe("alice", "0")
    assert _ids(await _take(stream, 1)) == [mention.id]
    stop.set()
    await asyncio.wait_for(running, 5)
    poller.close_subscribers()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 5)
