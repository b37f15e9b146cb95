"""Fixtures: real memory, llm (provider fake) and social (sandbox) servers, and the agent."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from puppet.social.v1 import social_service_pb2_grpc as social_rpc
from puppet_agent.server import Agent, build, compose
from puppet_agent.settings import AgentSettings
from puppet_llm.server import build as build_llm
from puppet_llm.settings import LlmSettings
from puppet_memory.server import build as build_memory
from puppet_memory.settings import MemorySettings
from puppet_runtime import started_server
from puppet_social.server import build as build_social
from puppet_social.settings import SocialSettings

if TYPE_CHECKING:
    from puppet.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub

QUIET: dict[str, Any] = {"port": 0, "drain_s": 0, "shutdown_grace_s": 0, "log_format": "text"}


class HashingEmbedder:
    """The memory service's embedder port, filled by word hashing: no model needed."""

    model = "test/hashing-64"
    dimension = 64

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or [text]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dimension)
        return out

    async def close(self) -> None:
        return None


@dataclass
class Suite:
    """The agent service and what a test needs to drive it."""

    agent: AgentServiceAsyncStub
    social: SocialServiceAsyncStub
    core: Agent
    settings: AgentSettings


@pytest.fixture
async def suite_factory(tmp_path: Path) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Suite:
            memory_settings = MemorySettings(**QUIET, data_dir=tmp_path / "memory")
            memory = await stack.enter_async_context(
                started_server(
                    build_memory(memory_settings, embedder=HashingEmbedder()),
                    memory_settings,
                    port=0,
                )
            )
            llm_settings = LlmSettings(
                **QUIET, data_dir=tmp_path / "llm", default_provider="fake", random_seed=7
            )
            llm = await stack.enter_async_context(
                started_server(build_llm(llm_settings), llm_settings, port=0)
            )
            social_settings = SocialSettings(
                **QUIET,
                data_dir=tmp_path / "social",
                default_tier="unlimited",
                outbox_interval_s=0.05,
                mention_poll_interval_s=0.05,
            )
            social = await stack.enter_async_context(
                started_server(build_social(social_settings), social_settings, port=0)
            )
            values: dict[str, Any] = {
                **QUIET,
                "memory_addr": f"127.0.0.1:{memory.port}",
                "llm_addr": f"127.0.0.1:{llm.port}",
                "social_addr": f"127.0.0.1:{social.port}",
                "data_dir": tmp_path / "agent",
                "agents_dir": None,
                "llm_provider": "default",
                "run_lives": False,
                "random_seed": 11,
                "tick_s": 0.05,
            }
            values.update(overrides)
            settings = AgentSettings(**values)
            core = compose(settings)
            agent = await stack.enter_async_context(
                started_server(build(settings, core), settings, port=0)
            )
            agent_channel = await stack.enter_async_context(
                grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}")
            )
            social_channel = await stack.enter_async_context(
                grpc.aio.insecure_channel(f"127.0.0.1:{social.port}")
            )
            return Suite(
                agent_rpc.AgentServiceStub(agent_channel),
                social_rpc.SocialServiceStub(social_channel),
                core,
                settings,
            )

        yield start


@pytest.fixture
async def suite(suite_factory: Any) -> Suite:
    started: Suite = await suite_factory()
    return started
