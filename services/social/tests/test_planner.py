"""The rate planner: start-up pacing, the last headers seen, tier caps, persisted windows."""

from __future__ import annotations

from typing import Protocol

import pytest
from puppet_social.network import RateInfo
from puppet_social.planner import DAY_S, POSTS, RatePlanner, TierPolicy, reset_of
from puppet_social.store import Action, NewItem, State
from puppet_social.store.sqlite import SqliteStore

LIKES = "POST /2/users/:id/likes"


class FakeClock(Protocol):
    """The conftest clock: a callable with a settable `now`."""

    now: float

    def __call__(self) -> float: ...


async def test_paces_an_endpoint_until_its_headers_are_known(
    sqlite_store: SqliteStore, clock: FakeClock
) -> None:
    planner = RatePlanner(sqlite_store, clock, {"free": TierPolicy(None, sends_per_second=2)})
    assert (await planner.plan("alice", POSTS)).go
    assert (await planner.plan("alice", POSTS)).go
    third = await planner.plan("alice", POSTS)
    assert (third.go, third.at) == (False, clock.now + 1.0)
    assert (await planner.plan("bob", POSTS)).go
    assert (await planner.plan("alice", LIKES)).go
    clock.now += 1.0
    assert (await planner.plan("alice", POSTS)).go
    await planner.record("alice", RateInfo(POSTS, 100, 50, clock.now + 900))
    for _ in range(5):
        assert (await planner.plan("alice", POSTS)).go


async def test_waits_for_the_window_or_day_reset(
    sqlite_store: SqliteStore, clock: FakeClock
) -> None:
    planner = RatePlanner(sqlite_store, clock, {"free": TierPolicy(None)})
    await planner.record("alice", RateInfo(POSTS, 17, 0, clock.now + 600, 17, 5, clock.now + 9e4))
    plan = await planner.plan("alice", POSTS)
    assert (plan.go, plan.at) == (False, clock.now + 600)
    await planner.record("alice", RateInfo(POSTS, 17, 9, clock.now + 600, 17, 0, clock.now + 9e4))
    plan = await planner.plan("alice", POSTS)
    assert (plan.go, plan.at) == (False, clock.now + 9e4)
    restarted = RatePlanner(sqlite_store, clock, {"free": TierPolicy(None)})
    assert (await restarted.plan("alice", POSTS)).at == clock.now + 9e4
    clock.now += 9e4
    assert (await restarted.plan("alice", POSTS)).go
    await planner.record("alice", None)
    await planner.record("alice", RateInfo("DELETE /2/tweets/:id"))
    assert await sqlite_store.get_window("alice", "DELETE /2/tweets/:id") is None


async def test_tier_post_cap_over_24_hours(sqlite_store: SqliteStore, clock: FakeClock) -> None:
    tiers = {"free": TierPolicy(2, sends_per_second=100), "pro": TierPolicy(None, 100)}
    planner = RatePlanner(sqlite_store, clock, tiers)
    for n in range(2):
        item, _ = await sqlite_store.create(NewItem("alice", f"r{n}", Action.POST, "t"), clock.now)
        await sqlite_store.transition(item.id, State.QUEUED, State.SENDING, clock.now)
        await sqlite_store.transition(item.id, State.SENDING, State.SENT, clock.now)
    capped = await planner.plan("alice", POSTS)
    assert not capped.go
    assert capped.at > clock.now
    assert (await planner.plan("alice", LIKES)).go
    planner.set_tier("alice", "pro")
    assert (await planner.plan("alice", POSTS)).go
    planner.set_tier("alice", "free")
    clock.now += DAY_S + 1
    assert (await planner.plan("alice", POSTS)).go
    with pytest.raises(ValueError, match="tier"):
        planner.set_tier("alice", "platinum")


def test_reset_of_a_rate_limited_call() -> None:
    now = 1000.0
    assert reset_of(None, now) == now + 60
    assert reset_of(RateInfo(POSTS, 17, 0, 1900.0), now) == 1900.0
    assert reset_of(RateInfo(POSTS, 17, 3, 1900.0, 17, 0, 9000.0), now) == 9000.0
    assert reset_of(RateInfo(POSTS), now) == now + 60
