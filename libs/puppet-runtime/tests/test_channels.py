"""Channels: retry policy from the proto's idempotency levels, deadlines on every call."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from puppet_runtime import open_channel, service_config
from puppet_runtime.testing import running, status_of


def test_service_config_from_idempotency_levels(demo):
    config = json.loads(service_config(demo.SERVICE, timeout_s=2.5))
    retried, everything = config["methodConfig"]
    assert sorted(n["method"] for n in retried["name"]) == ["Count", "Echo", "Put"]
    assert retried["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert everything == {"name": [{"service": "demo.v1.DemoService"}], "timeout": "2.5s"}
    assert retried["timeout"] == "2.5s"


def test_service_config_without_safe_methods_has_no_retries():
    service = health_pb2.DESCRIPTOR.services_by_name["Health"]  # Check is not marked
    config = json.loads(service_config(service, timeout_s=1))
    assert config == {
        "methodConfig": [{"name": [{"service": "grpc.health.v1.Health"}], "timeout": "1s"}]
    }


@pytest.mark.parametrize("method", ["Echo", "Put"])
async def test_safe_method_is_retried_on_unavailable(call, servicer, method):
    value = "flaky" if method == "Echo" else "p1"
    reply = await call(method, value)
    assert reply.value == value
    assert servicer.attempts[method, value] == 2


async def test_plain_method_is_not_retried(call, servicer):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Fire", "f1")
    code, info, _ = status_of(caught.value)
    assert info is not None
    assert (code, info.reason) == (grpc.StatusCode.UNAVAILABLE, "DEMO_BUSY")
    assert servicer.attempts["Fire", "f1"] == 1


async def test_bare_channel_does_not_retry(served, servicer, invoke):
    started, _ = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{started.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await invoke(channel, "Echo", "flaky")
    assert servicer.attempts["Echo", "flaky"] == 1


async def test_default_deadline_applies(demo, served, invoke):
    started, _ = served
    async with open_channel(f"127.0.0.1:{started.port}", demo.SERVICE, timeout_s=0.3) as channel:
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await invoke(channel, "Echo", "sleep:5")
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - began < 2
        remaining = float((await invoke(channel, "Echo", "remaining")).value)
    assert 0 < remaining <= 0.35  # grpc-timeout is rounded up on the wire


async def test_explicit_timeout_wins(demo, served, invoke):
    started, _ = served
    async with open_channel(f"127.0.0.1:{started.port}", demo.SERVICE, timeout_s=0.3) as channel:
        remaining = float((await invoke(channel, "Echo", "remaining", timeout=5)).value)
    assert 0.35 < remaining <= 5.05


async def test_methods_of_other_services_get_the_default_deadline(demo, served, invoke):
    started, _ = served
    async with open_channel(f"127.0.0.1:{started.port}", timeout_s=0.4) as channel:
        remaining = float((await invoke(channel, "Echo", "remaining")).value)
    assert 0 < remaining <= 0.45


async def test_duplicate_services_are_merged(demo, settings, servicer, invoke):
    async with (
        running(demo.build(servicer), settings) as (started, _),
        open_channel(f"127.0.0.1:{started.port}", demo.SERVICE, demo.SERVICE) as channel,
    ):
        assert (await invoke(channel, "Echo", "flaky")).value == "flaky"
    assert servicer.attempts["Echo", "flaky"] == 2


async def test_default_deadline_does_not_fire_early(demo, served, invoke):
    """grpcio starts service-config timeouts from the wrong clock (grpc/grpc#40633)."""
    started, _ = served
    await asyncio.sleep(0.6)
    async with open_channel(f"127.0.0.1:{started.port}", demo.SERVICE, timeout_s=0.5) as channel:
        assert (await invoke(channel, "Echo", "sleep:0.1")).value == "sleep:0.1"


async def _tasks_created_by_call(channel: grpc.aio.Channel, invoke: Any) -> int:
    """How many tasks the loop creates while `channel` makes one Echo call (server included)."""
    loop = asyncio.get_running_loop()
    created = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        await invoke(channel, "Echo", "x")
    finally:
        loop.set_task_factory(None)
    return created


async def test_calls_add_no_task_of_their_own(demo, served, invoke):
    """The defaults are filled in the caller's task, not by an interceptor's task per call."""
    started, _ = served
    target = f"127.0.0.1:{started.port}"
    async with (
        grpc.aio.insecure_channel(target) as bare,
        open_channel(target, demo.SERVICE) as ours,
    ):
        await invoke(bare, "Echo", "warm-up")
        await invoke(ours, "Echo", "warm-up")
        ours_created = await _tasks_created_by_call(ours, invoke)
        assert ours_created == await _tasks_created_by_call(bare, invoke)


def _seconds(reply: bytes) -> float | None:
    return None if reply == b"None" else float(reply)


@pytest.fixture
async def raw_port() -> AsyncIterator[int]:
    """A bare server whose client-streaming methods answer with their remaining deadline."""

    async def remaining(requests: AsyncIterator[bytes], context: Any) -> bytes:
        async for _ in requests:
            pass
        return str(context.time_remaining()).encode()

    async def remaining_stream(
        requests: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield str(context.time_remaining()).encode()

    handler = grpc.method_handlers_generic_handler(
        "raw.v1.Raw",
        {
            "In": grpc.stream_unary_rpc_method_handler(remaining),
            "Both": grpc.stream_stream_rpc_method_handler(remaining_stream),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


async def test_streams_have_only_the_deadline_they_pass(raw_port):
    """Long-lived streams (the agent's StreamMentions) must not get the unary default."""
    async with open_channel(f"127.0.0.1:{raw_port}", timeout_s=0.4) as channel:
        await channel.channel_ready()
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        into: grpc.aio.StreamUnaryMultiCallable[bytes, bytes]
        into = channel.stream_unary("/raw.v1.Raw/In")
        both: grpc.aio.StreamStreamMultiCallable[bytes, bytes]
        both = channel.stream_stream("/raw.v1.Raw/Both")
        sent = _seconds(await into(iter([b"a", b"b"])))
        echoed = [_seconds(item) async for item in both(iter([b"a"]))]
        explicit = _seconds(await into(iter([b"a"]), timeout=5))
    assert sent is None
    assert echoed == [None]
    assert explicit is not None
    assert 0.45 < explicit <= 5.05
