"""Fixtures: a fake embedder, SQLite and MongoDB stores, and a real MemoryService on port 0."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_memory.server import build
from puppet_memory.settings import MemorySettings
from puppet_memory.store import MemoryStore
from puppet_memory.store.mongo import MongoStore
from puppet_memory.store.sqlite import SqliteStore
from puppet_runtime.testing import mongo_wire_server, running

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub


class HashingEmbedder:
    """A deterministic embedder: each word adds a signed unit to a hashed slot, then L2-normalise.

    Texts that share words are close; texts that don't are nearly orthogonal. Good enough to test
    ranking without a model.
    """

    def __init__(self, model: str = "test/hashing-384", dimension: int = 384) -> None:
        self._model = model
        self._dimension = dimension
        self.calls = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dimension, np.float32)
        for word in re.findall(r"\w+", text.lower()) or [text]:
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self._dimension
            v[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = np.linalg.norm(v)
        return v / norm if norm else v

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.vector(t) for t in texts]).astype(np.float32)

    async def close(self) -> None:
        return None


class EmbeddingRejected(Exception):
    """What the OpenAI embedder raises when the provider refuses its key or model."""


class BrokenEmbedder(HashingEmbedder):
    """Fails every call, the way a provider outage (or a refused configuration) does."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise self._error


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def embedder_class() -> type[HashingEmbedder]:
    return HashingEmbedder


@pytest.fixture(scope="session")
def broken_embedders() -> dict[str, HashingEmbedder]:
    return {
        "EMBEDDER_UNAVAILABLE": BrokenEmbedder(TimeoutError("provider timed out")),
        "EMBEDDER_REJECTED": BrokenEmbedder(EmbeddingRejected("bad key")),
    }


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An nx-27017 MongoDB wire-protocol server for the whole session."""
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


StoreFactory = Callable[[], MemoryStore]


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one fresh database (SQLite file or MongoDB database) per test."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "memory.sqlite3")
    uri = request.getfixturevalue("mongo_uri")
    database = f"t_{uuid.uuid4().hex[:12]}"
    return lambda: MongoStore(uri, database)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[MemoryStore]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()


def make_settings(data_dir: Path, **overrides: Any) -> MemorySettings:
    return MemorySettings(
        port=0, data_dir=data_dir, drain_s=0, shutdown_grace_s=0, log_format="text", **overrides
    )


Serve = Callable[..., "AbstractAsyncContextManager[MemoryServiceAsyncStub]"]


@pytest.fixture
def serve(tmp_path: Path, embedder: HashingEmbedder) -> Serve:
    """serve(store=None, **settings) starts a MemoryService on port 0 and yields a stub."""

    @asynccontextmanager
    async def start(
        store: MemoryStore | None = None, embedder: Any = embedder, **overrides: Any
    ) -> AsyncIterator[MemoryServiceAsyncStub]:
        settings = make_settings(tmp_path / "data", **overrides)
        spec = build(settings, store=store, embedder=embedder)
        async with running(spec, settings) as (_, channel):
            yield rpc.MemoryServiceStub(channel)

    return start


@pytest.fixture
async def memory(serve: Serve) -> AsyncIterator[MemoryServiceAsyncStub]:
    """A MemoryService over SQLite with persona agents/a1 registered."""
    async with serve() as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
        yield stub
