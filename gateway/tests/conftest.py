"""Fixtures: real memory services (stable, canary) and a real Envoy in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from puppet_gateway.config import GatewaySettings
from puppet_gateway.descriptors import write_descriptor_set
from puppet_gateway.envoy import Envoy
from puppet_runtime.testing import load_sibling

harness = load_sibling(__file__, "harness")


@pytest.fixture
async def memory_pair(tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """Two real MemoryServices: stable and canary."""
    async with (
        harness.memory_instance(tmp_path / "stable") as stable,
        harness.memory_instance(tmp_path / "canary") as canary,
    ):
        yield stable, canary


@pytest.fixture
def descriptor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_descriptor_set(tmp_path_factory.getbasetemp() / "build" / "agent.binpb")


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


StartGateway = Callable[[GatewaySettings], Awaitable[Envoy]]


@pytest.fixture
def start_gateway(tmp_path: Path, exit_stack: AsyncExitStack) -> StartGateway:
    """start_gateway(settings) runs Envoy until the test ends; waits for healthy upstreams."""

    async def start(settings: GatewaySettings) -> Envoy:
        envoy = Envoy(settings, tmp_path / "envoy")
        await exit_stack.enter_async_context(envoy)
        grpc_clusters = harness.health_checked(settings)
        await envoy.wait_healthy(grpc_clusters)
        return envoy

    return start
