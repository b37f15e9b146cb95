"""Fixtures: chain stores over SQLite and MongoDB, and a real server over the local Solana."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from puppet_chain.store import ChainStore
from puppet_chain.store.mongo import MongoStore
from puppet_chain.store.sqlite import SqliteStore
from puppet_runtime.testing import load_sibling, mongo_wire_server
from pymongo import AsyncMongoClient

kit = load_sibling(__file__, "kit")
COLLECTIONS = (
    "wallets",
    "policies",
    "actions",
    "audit",
    "receipts",
    "requests",
    "counters",
    "leases",
)


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An nx-27017 MongoDB wire-protocol server for the whole session."""
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChainStore]:
    """A fresh store; nx-27017 serves one namespace whatever the name, so collections drop."""
    opened: ChainStore
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "chain.sqlite3")
    else:
        uri = request.getfixturevalue("mongo_uri")
        database = f"t_{uuid.uuid4().hex[:12]}"
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        for name in COLLECTIONS:
            await client[database].drop_collection(name)
        await client.close()
        opened = MongoStore(uri, database)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Any]:
    async with kit.serve(tmp_path) as started:
        yield started
