"""started_server: health, drain, reflection, startup failures, access log, metrics."""

import asyncio
import logging
import socket

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY
from puppet_runtime import started_server
from puppet_runtime.testing import free_port, running, serve_servicer, status_of, wait_serving

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(channel: grpc.aio.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    status: int = reply.status
    return status


async def test_health_serving_for_server_and_each_service(served):
    _, channel = served
    await wait_serving(channel, "demo.v1.DemoService")
    assert await _status(channel) == SERVING
    assert await _status(channel, "demo.v1.DemoService") == SERVING


async def test_set_serving_flips_every_name(served):
    started, channel = served
    await started.set_serving(False)
    assert [await _status(channel, s) for s in ("", "demo.v1.DemoService")] == [NOT_SERVING] * 2
    await started.set_serving(True)
    assert await _status(channel, "demo.v1.DemoService") == SERVING


async def test_not_serving_during_drain_then_stopped(demo, servicer):
    settings = demo.DemoSettings(port=0, drain_s=0.5, shutdown_grace_s=0)
    closed = []

    async def close():
        closed.append(True)

    server = started_server(demo.build(servicer, on_shutdown=[close]), settings)
    started = await server.__aenter__()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{started.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="demo.v1.DemoService")
        )
        assert (await watch.read()).status == SERVING
        stopping = asyncio.create_task(server.__aexit__(None, None, None))
        assert (await watch.read()).status == NOT_SERVING
        assert not stopping.done()  # still draining: the port answers
        assert await _status(channel) == NOT_SERVING
        await stopping
        assert closed == [True]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _status(channel)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_reflection_lists_services(served):
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    reply = await call.read()
    names = {s.name for s in reply.list_services_response.service}
    assert {"demo.v1.DemoService", "grpc.health.v1.Health"} <= names
    call.cancel()


async def test_reflection_resolves_the_service_file(served):
    _, channel = served
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="demo.v1.DemoService")
    call = stub.ServerReflectionInfo(iter([request]))
    reply = await call.read()
    assert reply.file_descriptor_response.file_descriptor_proto
    call.cancel()


async def test_startup_failure_raises_and_cleans_up(demo, settings):
    port = free_port()
    closed = []

    async def broken():
        raise RuntimeError("cannot open the database")

    async def close():
        closed.append(True)

    spec = demo.build(on_startup=[broken], on_shutdown=[close])
    with pytest.raises(RuntimeError, match="cannot open the database"):
        async with started_server(spec, settings, port=port):
            pytest.fail("must not start")
    assert closed == [True]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listening


async def test_startup_hooks_run_before_serving(demo, settings):
    order = []

    async def opened():
        order.append("startup")

    async with running(demo.build(on_startup=[opened]), settings) as (_, channel):
        order.append("serving")
        await wait_serving(channel)
    assert order == ["startup", "serving"]


async def test_taken_port_fails_loudly(demo, settings):
    async with running(demo.build(), settings) as (started, _):
        with pytest.raises(OSError, match="cannot bind"):
            async with started_server(demo.build(), settings, port=started.port):
                pytest.fail("two servers on one port")


async def test_failing_shutdown_hook_does_not_stop_the_others(demo, settings, caplog):
    closed = []

    async def broken():
        raise RuntimeError("close failed")

    async def close():
        closed.append(True)

    async with running(demo.build(on_shutdown=[broken, close]), settings):
        pass
    assert closed == [True]
    assert any("shutdown hook" in r.getMessage() for r in caplog.records)


async def test_access_log_one_line_per_rpc_and_skips_health(served, call, caplog):
    caplog.set_level(logging.INFO, logger="puppet_runtime.access")
    _, channel = served
    await call("Echo", "hi")
    with pytest.raises(grpc.aio.AioRpcError):
        await call("Echo", "not-found:x")
    await _status(channel)
    lines = [r for r in caplog.records if r.name == "puppet_runtime.access"]
    assert [(r.method, r.code) for r in lines] == [
        ("/demo.v1.DemoService/Echo", "OK"),
        ("/demo.v1.DemoService/Echo", "NOT_FOUND"),
    ]
    assert all(r.duration_ms >= 0 and r.peer.startswith("ipv4:127.0.0.1") for r in lines)


async def test_access_log_records_deadline_exceeded(call, caplog):
    caplog.set_level(logging.INFO, logger="puppet_runtime.access")
    with pytest.raises(grpc.aio.AioRpcError):
        await call("Echo", "sleep:2", timeout=0.2)
    for _ in range(50):
        if any(r.name == "puppet_runtime.access" for r in caplog.records):
            break
        await asyncio.sleep(0.02)
    [line] = [r for r in caplog.records if r.name == "puppet_runtime.access"]
    assert line.code in ("DEADLINE_EXCEEDED", "CANCELLED")


def _handled(method: str, code: str) -> float:
    labels = {"service": "demo.puppet", "method": f"demo.v1.DemoService/{method}", "code": code}
    return REGISTRY.get_sample_value("puppet_grpc_server_handled_total", labels) or 0.0


async def test_metrics_count_rpcs_by_code(call):
    ok, not_found = _handled("Echo", "OK"), _handled("Echo", "NOT_FOUND")
    streams = _handled("Count", "OK")
    await call("Echo", "hi")
    await call("Echo", "hi")
    with pytest.raises(grpc.aio.AioRpcError):
        await call("Echo", "not-found:x")
    assert [x async for x in call("Count", "2")]
    assert _handled("Echo", "OK") == ok + 2
    assert _handled("Echo", "NOT_FOUND") == not_found + 1
    assert _handled("Count", "OK") == streams + 1
    seconds = REGISTRY.get_sample_value(
        "puppet_grpc_server_handling_seconds_count",
        {"service": "demo.puppet", "method": "demo.v1.DemoService/Echo"},
    )
    assert seconds is not None
    assert seconds >= 3


async def test_serve_servicer_maps_errors_of_fakes(demo, invoke):
    fake = demo.Demo()
    async with (
        serve_servicer(lambda server: server.add_generic_rpc_handlers((fake.handler(),))) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        assert (await invoke(channel, "Echo", "hi")).value == "hi"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await invoke(channel, "Echo", "not-found:x")

    code, info, _ = status_of(caught.value)
    assert info is not None
    assert (code, info.domain, info.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "fake.puppet",
        "THING_NOT_FOUND",
    )


async def test_wait_serving_times_out_with_last_status(served):
    started, channel = served
    await started.set_serving(False)
    with pytest.raises(TimeoutError, match="NOT_SERVING"):
        await wait_serving(channel, timeout_s=0.2)
