"""Fixtures: a hand-moved clock, SQLite and MongoDB outbox stores, and a sandbox network."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from puppet_runtime.testing import mongo_wire_server
from puppet_social.network.sandbox import SandboxNetwork, TierLimits
from puppet_social.store import OutboxStore
from puppet_social.store.mongo import MongoStore
from puppet_social.store.sqlite import SqliteStore
from pymongo import AsyncMongoClient

T0 = 1_800_000_000.0
TINY = TierLimits(posts_per_15min=2, posts_per_24h=None, mention_reads_per_15min=None)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An nx-27017 MongoDB wire-protocol server for the whole session."""
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


StoreFactory = Callable[[], OutboxStore]


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one fresh database (SQLite file or MongoDB database) per test.

    nx-27017 serves one namespace whatever the database name, so the collections are dropped.
    """
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "outbox.sqlite3")
    uri = request.getfixturevalue("mongo_uri")
    database = f"t_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    for name in ("outbox", "rate_windows"):
        await client[database].drop_collection(name)
    await client.close()
    return lambda: MongoStore(uri, database)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[OutboxStore]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def sandbox(tmp_path: Path, clock: Clock) -> AsyncIterator[SandboxNetwork]:
    network = SandboxNetwork(tmp_path / "sandbox.db", clock=clock, tiers={"tiny": TINY})
    await network.open()
    yield network
    await network.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "outbox.sqlite3")
    await opened.open()
    yield opened
    await opened.close()
