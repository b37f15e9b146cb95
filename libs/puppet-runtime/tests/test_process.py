"""The demo as a process via puppet_runtime.run: SIGTERM drain, JSON logs, tracing, metrics."""

import asyncio
import json
import os
import re
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from puppet_runtime.testing import free_port, wait_serving

DEMO = Path(__file__).with_name("demo_service.py")
SERVICE = "demo.v1.DemoService"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PUPPET_DEMO_"))}
    return {**env, **extra}


def _json_lines(output: bytes) -> list[dict[str, Any]]:
    entries = []
    for line in output.decode().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


async def _spawn(port: int, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEMO),
        env=_env(PUPPET_DEMO_PORT=str(port), **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int | None, bytes, bytes]:
    """SIGTERM, then the exit code and stdout (killing it if it hangs)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return proc.returncode, out, err


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text: str = reply.read().decode()
        return text


async def test_sigterm_drains_then_exits_zero(invoke):
    port, metrics_port = free_port(), free_port()
    proc = await _spawn(
        port,
        PUPPET_DEMO_DRAIN_S="0.5",
        PUPPET_DEMO_SHUTDOWN_GRACE_S="1",
        PUPPET_DEMO_METRICS_PORT=str(metrics_port),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, SERVICE, timeout_s=30)
            meta = (("x-request-id", "req-proc"),)
            assert (await invoke(channel, "Echo", "request-id", metadata=meta)).value == "req-proc"
            metrics = await asyncio.to_thread(_scrape, metrics_port)
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=SERVICE)
            )
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            proc.send_signal(signal.SIGTERM)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        code, out, err = await _stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err.decode()
    labels = 'code="OK",method="demo.v1.DemoService/Echo",service="demo.puppet"'
    assert f"puppet_grpc_server_handled_total{{{labels}}} 1.0" in metrics
    entries = _json_lines(out)
    [access] = [e for e in entries if e["logger"] == "puppet_runtime.access"]
    assert (access["request_id"], access["code"], access["level"]) == ("req-proc", "OK", "INFO")
    assert "trace_id" not in access  # tracing is off without OTEL_* variables
    assert {"ts", "message", "method", "duration_ms", "peer"} <= access.keys()
    assert any("stop signal" in e["message"] for e in entries)
    assert "Traceback" not in err.decode()


async def test_tracing_puts_trace_ids_in_logs_and_propagates(invoke):
    port = free_port()
    proc = await _spawn(port, OTEL_TRACES_EXPORTER="console", PUPPET_DEMO_DRAIN_S="0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, SERVICE, timeout_s=30)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            meta = (("x-request-id", "req-traced"),)
            reply = await invoke(channel, "Echo", f"forward:127.0.0.1:{port}", metadata=meta)
            assert reply.value == "req-traced"
        code, out, err = await _stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err.decode()
    entries = _json_lines(out)
    handled = [e for e in entries if e.get("message") == "handling request-id"]
    [inner] = handled
    assert inner["request_id"] == "req-traced"
    assert re.fullmatch(r"[0-9a-f]{32}", inner["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", inner["span_id"])
    access = [e for e in entries if e.get("logger") == "puppet_runtime.access"]
    assert len(access) == 2
    assert {(e["request_id"], e["trace_id"]) for e in access} == {("req-traced", inner["trace_id"])}
    spans = [e for e in entries if "context" in e and "kind" in e]
    same_trace = [s for s in spans if s["context"]["trace_id"] == f"0x{inner['trace_id']}"]
    assert sorted(s["kind"] for s in same_trace) == [
        "SpanKind.CLIENT",
        "SpanKind.SERVER",
        "SpanKind.SERVER",
    ]
    assert {s["resource"]["attributes"]["service.name"] for s in spans} == {"puppet-demo"}
    assert not [s for s in spans if "Health" in s["name"]]
