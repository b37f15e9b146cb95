"""Request ids: generated or adopted, visible to the handler, echoed, propagated downstream."""

import re
from typing import Any

import grpc
import pytest
from puppet_runtime import open_channel
from puppet_runtime.testing import running


def _metadata(pairs: Any) -> dict[str, Any]:
    return dict(pairs or ())


async def test_generated_when_absent_and_echoed(call):
    rpc = call("Echo", "request-id")
    reply = await rpc
    assert re.fullmatch(r"[0-9a-f]{32}", reply.value)
    assert _metadata(await rpc.trailing_metadata())["x-request-id"] == reply.value
    # unary: trailers only (initial metadata would be a batch of its own)
    assert "x-request-id" not in _metadata(await rpc.initial_metadata())


async def test_incoming_id_is_adopted(call):
    rpc = call("Echo", "request-id", metadata=(("x-request-id", "req-42"),))
    assert (await rpc).value == "req-42"
    assert _metadata(await rpc.trailing_metadata())["x-request-id"] == "req-42"


async def test_unreasonable_incoming_id_is_replaced(call):
    rpc = call("Echo", "request-id", metadata=(("x-request-id", "x" * 500),))
    assert re.fullmatch(r"[0-9a-f]{32}", (await rpc).value)


async def test_echoed_in_trailers_on_error(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Echo", "not-found:a", metadata=(("x-request-id", "req-err"),))
    assert _metadata(caught.value.trailing_metadata())["x-request-id"] == "req-err"


async def test_echoed_on_internal_error_too(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Echo", "boom", metadata=(("x-request-id", "req-boom"),))
    assert _metadata(caught.value.trailing_metadata())["x-request-id"] == "req-boom"


async def test_streams_echo_it(call):
    rpc = call("Count", "1", metadata=(("x-request-id", "req-stream"),))
    assert [item.value async for item in rpc] == ["0"]
    assert _metadata(await rpc.initial_metadata())["x-request-id"] == "req-stream"


async def test_propagated_to_downstream_calls(demo, settings, call):
    async with running(demo.build(), settings) as (downstream, _):
        reply = await call(
            "Echo",
            f"forward:127.0.0.1:{downstream.port}",
            metadata=(("x-request-id", "req-chain"),),
        )
    assert reply.value == "req-chain"


async def test_not_added_outside_an_rpc(demo, served, invoke):
    started, _ = served
    async with open_channel(f"127.0.0.1:{started.port}", demo.SERVICE) as channel:
        reply = await invoke(channel, "Echo", "request-id")
    assert re.fullmatch(r"[0-9a-f]{32}", reply.value)
