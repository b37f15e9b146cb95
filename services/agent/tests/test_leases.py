"""Leases: one suite over the SQLite and MongoDB stores, then Leasers sharing and failing over."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from puppet_agent.leases import Lease, LeaseStore
from puppet_agent.leases.leaser import Leaser
from puppet_agent.leases.mongo import MongoLeaseStore
from puppet_agent.leases.sqlite import SqliteLeaseStore
from puppet_runtime.testing import mongo_wire_server


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, clock=None) -> LeaseStore:
    if kind == "sqlite":
        return SqliteLeaseStore(tmp_path / "leases.sqlite3", **({"clock": clock} if clock else {}))
    uri = request.getfixturevalue("mongo_uri")
    return MongoLeaseStore(uri, f"t_{uuid.uuid4().hex[:12]}", clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(kind, request, tmp_path, clock) -> AsyncIterator[LeaseStore]:
    opened = make_store(kind, request, tmp_path, clock)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def real_time_store(kind, request, tmp_path) -> AsyncIterator[LeaseStore]:
    opened = make_store(kind, request, tmp_path)
    await opened.open()
    yield opened
    await opened.close()


async def test_a_free_key_is_taken_once_and_held_against_others(store, clock):
    first = await store.try_acquire("p1", "r1", 10)
    assert first == Lease("p1", "r1", 1, clock.now + 10)
    assert await store.try_acquire("p1", "r2", 10) is None
    assert await store.renew("p1", "r2", 10) is None
    assert await store.release("p1", "r2") is False
    assert await store.holders() == {"p1": first}


async def test_acquiring_again_renews_without_a_new_token(store, clock):
    await store.try_acquire("p1", "r1", 10)
    clock.now += 5
    again = await store.try_acquire("p1", "r1", 10)
    assert again == Lease("p1", "r1", 1, clock.now + 10)
    clock.now += 5
    renewed = await store.renew("p1", "r1", 10)
    assert renewed == Lease("p1", "r1", 1, clock.now + 10)


async def test_expiry_is_judged_by_store_time_and_takeover_bumps_the_token(store, clock):
    await store.try_acquire("p1", "r1", 10)
    clock.now += 10
    assert await store.holders() == {}
    assert await store.renew("p1", "r1", 10) is None
    taken = await store.try_acquire("p1", "r2", 10)
    assert taken == Lease("p1", "r2", 2, clock.now + 10)
    assert await store.release("p1", "r1") is False


async def test_release_frees_the_key_and_keeps_the_token_growing(store):
    await store.try_acquire("p1", "r1", 10)
    assert await store.release("p1", "r1") is True
    assert await store.holders() == {}
    assert (await store.try_acquire("p1", "r2", 10)).token == 2
    assert await store.release("p1", "r2") is True
    assert (await store.try_acquire("p1", "r1", 10)).token == 3


async def test_concurrent_takers_get_exactly_one_lease(store):
    results = await asyncio.gather(*(store.try_acquire("p1", f"r{i}", 10) for i in range(8)))
    winners = [lease for lease in results if lease is not None]
    assert len(winners) == 1
    assert (await store.holders())["p1"] == winners[0]


async def test_store_time_without_an_injected_clock_is_now(real_time_store):
    lease = await real_time_store.try_acquire("p1", "r1", 2)
    loop_now = time.time()
    assert lease is not None
    assert abs(lease.expires_at - (loop_now + 2)) < 1.5


# The real-time tests' lease period: long enough that a loaded machine's scheduling stalls
# (hundreds of ms at load 10+, against the MongoDB-compatible server too) stay a small share of it.
REAL_TTL_S = 2.0


async def wait_for(predicate, timeout_s: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout_s:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return loop.time() - start


def exclusive_cover(leasers: list[Leaser], personas: set[str]) -> bool:
    held = [set(leaser.held) for leaser in leasers]
    return sum(len(h) for h in held) == len(personas) and set().union(*held) == personas


async def test_three_leasers_share_thirty_personas_and_survivors_take_a_dead_ones(real_time_store):
    personas = {f"persona-{i:02d}" for i in range(30)}
    ttl = REAL_TTL_S
    events: list[tuple[str, str, str]] = []

    def leaser(name: str) -> Leaser:
        async def acquired(lease: Lease) -> None:
            events.append(("+", name, lease.key))

        async def lost(persona_id: str) -> None:
            events.append(("-", name, persona_id))

        return Leaser(
            real_time_store, name, lambda: personas, ttl_s=ttl, on_acquired=acquired, on_lost=lost
        )

    leasers = [leaser(f"replica-{i}") for i in range(3)]
    for each in leasers:
        await each.start()
    try:
        await wait_for(lambda: all(len(each.held) == 10 for each in leasers), 8 * ttl)
        assert exclusive_cover(leasers, personas)
        holders = await real_time_store.holders()
        for each in leasers:
            assert all(holders[p].replica_id == each.replica_id for p in each.held)

        dead = leasers.pop()
        orphans = set(dead.held)
        await dead.stop(release=False)
        moved = await wait_for(lambda: all(len(each.held) == 15 for each in leasers), 4 * ttl)
        assert moved <= 1.5 * ttl
        assert exclusive_cover(leasers, personas)
        holders = await real_time_store.holders()
        assert {holders[p].replica_id for p in orphans} <= {each.replica_id for each in leasers}
        assert all(holders[p].token >= 2 for p in orphans)
    finally:
        for each in leasers:
            await each.stop()
    assert await real_time_store.holders() == {}
    assert {name for _, name, _ in events} == {"replica-0", "replica-1", "replica-2"}


async def test_a_persona_no_longer_wanted_is_released(store):
    personas = {"a", "b"}
    leaser = Leaser(store, "r1", lambda: personas, ttl_s=10)
    await leaser.tick()
    assert set(leaser.held) == {"a", "b"}
    personas.discard("b")
    await leaser.tick()
    assert set(leaser.held) == {"a"}
    assert set(await store.holders()) == {"a", "replica:r1"}


async def test_a_leaser_that_cannot_renew_stops_its_personas_within_a_ttl(tmp_path):
    store = SqliteLeaseStore(tmp_path / "leases.sqlite3")
    await store.open()
    lost: list[str] = []

    async def on_lost(persona_id: str) -> None:
        lost.append(persona_id)

    leaser = Leaser(store, "r1", lambda: {"a", "b", "c"}, ttl_s=0.6, on_lost=on_lost)
    await leaser.start()
    try:
        await wait_for(lambda: len(leaser.held) == 3, 2)
        await store.close()
        await wait_for(lambda: not leaser.held, 1.0)
        assert sorted(lost) == ["a", "b", "c"]
    finally:
        await leaser.stop(release=False)


async def test_a_clean_stop_hands_personas_over_before_they_would_expire(real_time_store):
    personas = {f"p{i}" for i in range(10)}
    ttl = REAL_TTL_S
    first, second = (Leaser(real_time_store, f"r{i}", lambda: personas, ttl_s=ttl) for i in (1, 2))
    await first.start()
    await second.start()
    try:
        await wait_for(lambda: len(first.held) == len(second.held) == 5, 8 * ttl)
        await first.stop()
        assert first.held == {}
        moved = await wait_for(lambda: len(second.held) == 10, 2 * ttl)
        assert moved < 0.75 * ttl
    finally:
        await first.stop()
        await second.stop()
