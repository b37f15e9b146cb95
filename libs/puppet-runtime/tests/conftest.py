"""Fixtures: the demo service (loaded by path: tests/ is not a package) on a real server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2
from puppet_runtime import StartedServer
from puppet_runtime.testing import running

DEMO_PATH = Path(__file__).with_name("demo_service.py")


def _load_demo() -> ModuleType:
    name = "puppet_runtime_tests_demo"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEMO_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def demo() -> ModuleType:
    """The demo service module (descriptor, servicer, settings, build)."""
    return _load_demo()


@pytest.fixture
def settings(demo: ModuleType) -> Any:
    return demo.DemoSettings(port=0, drain_s=0, shutdown_grace_s=0)


@pytest.fixture
def servicer(demo: ModuleType) -> Any:
    return demo.Demo()


@pytest.fixture
async def served(
    demo: ModuleType, servicer: Any, settings: Any
) -> AsyncIterator[tuple[StartedServer, grpc.aio.Channel]]:
    """The demo on a real server on port 0, and an `open_channel` to it."""
    async with running(demo.build(servicer), settings) as pair:
        yield pair


def _invoke(channel: grpc.aio.Channel, method: str, value: str, **kwargs: Any) -> Any:
    """Start a demo call; unary calls are awaitable, `Count` is async-iterable."""
    path = f"/demo.v1.DemoService/{method}"
    codec: dict[str, Any] = {
        "request_serializer": wrappers_pb2.StringValue.SerializeToString,
        "response_deserializer": wrappers_pb2.StringValue.FromString,
    }
    factory = channel.unary_stream if method == "Count" else channel.unary_unary
    return factory(path, **codec)(wrappers_pb2.StringValue(value=value), **kwargs)


@pytest.fixture
def invoke() -> Any:
    """`invoke(channel, "Echo", "text", timeout=...)`: a demo call on any channel."""
    return _invoke


@pytest.fixture
def call(served: tuple[StartedServer, grpc.aio.Channel]) -> Any:
    """`call("Echo", "text", **kwargs)`: a demo call on the served demo's channel."""
    _, channel = served
    return lambda method, value, **kwargs: _invoke(channel, method, value, **kwargs)
