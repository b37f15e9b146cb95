"""The composition root's embedders through the wire: real MiniLM, and OpenAI over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from puppet.memory.v1 import memory_pb2 as m
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_memory.server import build
from puppet_memory.settings import MemorySettings
from puppet_runtime.testing import load_sibling, running, status_of

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub as Stub

    from tests import fake_openai
else:
    fake_openai = load_sibling(__file__, "fake_openai")

KEY = "sk-wired-test-key-0123456789"
FACTS = (
    "I drink green tea every morning before posting.",
    "Solana transaction fees were tiny this week.",
    "My cat sleeps on the keyboard all afternoon.",
    "The devs shipped the new wallet screen on Friday.",
)


async def _serving(tmp_path: Path, **settings: Any) -> AsyncIterator[Stub]:
    config = MemorySettings(
        port=0, data_dir=tmp_path, drain_s=0, shutdown_grace_s=0, log_format="text", **settings
    )
    async with running(build(config), config) as (_, channel):
        stub = rpc.MemoryServiceStub(channel)
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="p1"))
        yield stub


async def _remember(stub: Stub) -> None:
    await stub.BatchCreateMemories(
        pb.BatchCreateMemoriesRequest(
            parent="agents/p1",
            requests=[pb.CreateMemoryRequest(memory=m.Memory(content=fact)) for fact in FACTS],
        )
    )


@pytest.fixture
async def minilm_memory(tmp_path: Path) -> AsyncIterator[Stub]:
    async for stub in _serving(tmp_path, embedder="minilm"):
        yield stub


async def test_default_minilm_recalls_by_meaning(minilm_memory: Stub) -> None:
    await _remember(minilm_memory)
    expectations = {
        "what do you like to drink?": FACTS[0],
        "are blockchain fees expensive right now?": FACTS[1],
        "tell me about your pet": FACTS[2],
    }
    for question, fact in expectations.items():
        found = await minilm_memory.RecallMemories(
            pb.RecallMemoriesRequest(parent="agents/p1", text=question, top_k=2)
        )
        assert found.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert found.results[0].memory.content == fact, question


async def test_openai_embedder_is_wired_and_keeps_its_key_secret(tmp_path: Path) -> None:
    with fake_openai.serve(api_key=KEY) as fake:
        async for stub in _serving(
            tmp_path,
            embedder="openai",
            openai_api_key=KEY,
            openai_base_url=fake.base_url,
            openai_embedding_model="text-embedding-3-small",
        ):
            await _remember(stub)
            found = await stub.RecallMemories(
                pb.RecallMemoriesRequest(parent="agents/p1", text=FACTS[3], top_k=1)
            )
            assert found.embedding_model == "text-embedding-3-small"
            assert found.results[0].memory.content == FACTS[3]
            assert fake.requests
            assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in fake.requests)

            fake.always = fake_openai.Failure(401, f"Incorrect API key provided: {KEY}")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateMemory(
                    pb.CreateMemoryRequest(parent="agents/p1", memory=m.Memory(content="x"))
                )
            code, info, _ = status_of(caught.value)
            assert code is grpc.StatusCode.FAILED_PRECONDITION
            assert info is not None
            assert info.reason == "EMBEDDER_REJECTED"
            assert KEY not in str(caught.value.details()) + str(info.metadata)
            listed = await stub.ListMemories(pb.ListMemoriesRequest(parent="agents/p1"))
            assert len(listed.memories) == len(FACTS), "a failed create must store nothing"
