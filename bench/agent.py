"""Agent service benchmark: one replica's CPU with 1,000 running personas, forced posts per second.

Runs memory, llm (provider `fake`: instant), social (sandbox) and agent as real processes
(`python -m puppet_<svc>`, ports from free_port, data in a temp dir), like `dev.py up`, and drives
the agent over gRPC. `scheduler_cpu_pct` is the agent process's own CPU time (utime + stime from
/proc/<pid>/stat) over a window with every persona's life running (schedule, mention stream,
events, mood decay, leases), as a share of one core. `e2e_posts_per_s` is forced CreatePost calls
from many concurrent callers, each fully accepted (outbox item created), through agent → llm →
memory → social. The last line printed is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from embed import cpu_model
from google.protobuf import struct_pb2
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, wait_serving

if TYPE_CHECKING:
    from puppet.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub

TICKS = os.sysconf("SC_CLK_TCK")


def persona(i: int) -> dict[str, Any]:
    """A persona file like config/agents/tea-critic.json (legacy gaps: 2-6 h)."""
    return {
        "id": f"bench-{i:04d}",
        "name": f"Bench {i}",
        "description": "A retired botanist who reviews teas and teases coffee drinkers.",
        "llm_provider": "fake",
        "personality": {
            "traits": ["Patient", "Wry"],
            "values": ["Short posts"],
            "speaking_style": "Dry, warm, one or two sentences",
            "interests": ["oolong", "tea gardens", "botany"],
        },
        "style_guide": {"voice": "calm expert", "tone": "playful rivalry, never cruel"},
        "behavior": {
            "post_frequency": {
                "min_hours_between_posts": 2,
                "max_hours_between_posts": 6,
                "peak_posting_hours": [8, 12, 17],
            },
            "interaction_patterns": {
                "reply_probability": 0.8,
                "quote_tweet_probability": 0.2,
                "like_probability": 0.6,
            },
        },
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@asynccontextmanager
async def process(
    name: str, root: Path, env: dict[str, str], service: str, profiles: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """python -m puppet_<name> on a free port and its own data dir, until SERVING.

    With ``profiles[name]`` set, the process runs under cProfile and writes its stats to that
    file when it stops (cProfile sees the main thread only).
    """
    profile = profiles.get(name, "")
    prefix = f"PUPPET_{name.upper()}_"
    port = free_port()
    log = (root / f"{name}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *(("-m", "cProfile", "-o", profile) if profile else ()),
        "-m",
        f"puppet_{name}",
        env={
            **os.environ,
            f"{prefix}PORT": str(port),
            f"{prefix}DATA_DIR": str(root / name),
            f"{prefix}LOG_LEVEL": "WARNING",
            f"{prefix}DRAIN_S": "0",
            **{prefix + k: v for k, v in env.items()},
        },
        stdout=log,
        stderr=log,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, service, timeout_s=300)
        yield proc, port
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.close()


async def create_personas(stub: AgentServiceAsyncStub, n: int, concurrency: int) -> float:
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            body = struct_pb2.Struct()
            body.update(persona(i))
            await stub.CreateAgent(
                pb.CreateAgentRequest(persona=body, request_id=f"bench-create-{i}"), timeout=120
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def held_leases(path: Path) -> int:
    """Live persona leases in the replica's lease file."""
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as db:
        held: int = db.execute(
            "SELECT COUNT(*) FROM leases WHERE key LIKE 'bench-%' AND expires_at > ?",
            (time.time(),),
        ).fetchone()[0]
    return held


async def wait_leased(leases: Path, n: int, timeout_s: float) -> float:
    """Seconds until the replica holds a lease on all n personas (read from its lease file)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if held_leases(leases) >= n:
            return time.perf_counter() - started
        await asyncio.sleep(1)
    raise TimeoutError(f"the replica did not lease {n} personas in {timeout_s:.0f}s")


async def settle(pid: int, at_least_s: float) -> None:
    """Wait at_least_s, then until the lives' start-up is over: a 5 s slice under 5% of a core
    (at most 120 s more)."""
    await asyncio.sleep(at_least_s)
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(5)
        if cpu_seconds(pid) - before < 0.25:
            return


async def measure_cpu(pid: int, window_s: float) -> dict[str, Any]:
    """The process's CPU share of one core over the window, plus 10-second slices."""
    slices = []
    start_cpu, start = cpu_seconds(pid), time.perf_counter()
    last_cpu, last = start_cpu, start
    while time.perf_counter() - start < window_s:
        await asyncio.sleep(min(10.0, window_s - (time.perf_counter() - start)))
        now_cpu, now = cpu_seconds(pid), time.perf_counter()
        slices.append(100 * (now_cpu - last_cpu) / (now - last))
        last_cpu, last = now_cpu, now
    return {"pct": 100 * (last_cpu - start_cpu) / (last - start), "slices": slices}


async def forced_posts(
    stub: AgentServiceAsyncStub, personas: int, posts: int, concurrency: int, tag: str
) -> tuple[float, list[float], int]:
    """posts forced CreatePost calls spread over the personas; (seconds, latencies ms, accepted)."""
    queue = iter(range(posts))
    latencies: list[float] = []
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        for i in queue:
            request = pb.CreatePostRequest(
                agent_id=f"bench-{i % personas:04d}",
                topic=f"tea note {i}",
                force=True,
                request_id=f"bench-{tag}-{i}",
            )
            started = time.perf_counter()
            await stub.CreatePost(request, timeout=120)
            latencies.append((time.perf_counter() - started) * 1000)
            accepted += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, accepted


def outbox_items(root: Path) -> int:
    """Outbox rows in the social sandbox's store (each accepted post created one)."""
    found = 0
    for path in (root / "social").glob("*.sqlite3"):
        with sqlite3.connect(path, timeout=5) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "outbox" in tables:
                found += db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    return found


async def e2e(
    stub: AgentServiceAsyncStub, root: Path, procs: dict[str, int], args: argparse.Namespace
) -> dict[str, object]:
    """Forced posts per second, with each service's CPU per post."""
    figures: dict[str, object] = {}
    await forced_posts(stub, args.personas, args.concurrency, args.concurrency, "warm")
    before = outbox_items(root)
    cpu_before = {name: cpu_seconds(pid) for name, pid in procs.items()}
    seconds, latencies, accepted = await forced_posts(
        stub, args.personas, args.posts, args.concurrency, "run"
    )
    created = outbox_items(root) - before
    figures["e2e_cpu_ms_per_post"] = {
        name: round(1000 * (cpu_seconds(pid) - cpu_before[name]) / max(accepted, 1), 2)
        for name, pid in procs.items()
    }
    figures["e2e_posts_per_s"] = round(accepted / seconds, 1)
    figures["e2e_p50_ms"] = round(statistics.median(latencies), 1)
    figures["e2e_p99_ms"] = round(percentile(latencies, 99), 1)
    figures["e2e_posts"] = accepted
    figures["e2e_outbox_items_created"] = created
    figures["e2e_concurrency"] = args.concurrency
    return figures


async def main(args: argparse.Namespace) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    profiles = dict(item.split("=", 1) for item in args.profile)
    (root / "agents").mkdir()
    figures: dict[str, object] = {"personas": args.personas}
    async with AsyncExitStack() as stack:
        mem_proc, memory = await stack.enter_async_context(
            process("memory", root, {}, "puppet.memory.v1.MemoryService", profiles)
        )
        llm_proc, llm = await stack.enter_async_context(
            process(
                "llm",
                root,
                {
                    "PROVIDER": "fake",
                    "DEFAULT_DAILY_COST_LIMIT_USD": "0",
                    # the fake echoes the prompt's first line, the same for every post
                    "NEAR_DUPLICATE_THRESHOLD": "1",
                },
                "puppet.llm.v1.LlmService",
                profiles,
            )
        )
        social_proc, social = await stack.enter_async_context(
            process(
                "social",
                root,
                {"NETWORK": "sandbox", "DEFAULT_TIER": "unlimited"},
                "puppet.social.v1.SocialService",
                profiles,
            )
        )
        agent, port = await stack.enter_async_context(
            process(
                "agent",
                root,
                {
                    "MEMORY_ADDR": f"127.0.0.1:{memory}",
                    "LLM_ADDR": f"127.0.0.1:{llm}",
                    "SOCIAL_ADDR": f"127.0.0.1:{social}",
                    "AGENTS_DIR": str(root / "agents"),
                    "LLM_PROVIDER": "fake",
                },
                "puppet.agent.v1.AgentService",
                profiles,
            )
        )
        procs = {
            "memory": mem_proc.pid,
            "llm": llm_proc.pid,
            "social": social_proc.pid,
            "agent": agent.pid,
        }
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        stub = rpc.AgentServiceStub(channel)
        figures["create_personas_s"] = round(
            await create_personas(stub, args.personas, args.concurrency), 1
        )
        figures["lease_all_s"] = round(
            await wait_leased(root / "agent" / "leases.sqlite3", args.personas, 300), 1
        )
        leased, started = cpu_seconds(agent.pid), time.perf_counter()
        await settle(agent.pid, args.settle)
        figures["lives_start_cpu_s"] = round(cpu_seconds(agent.pid) - leased, 1)
        figures["settle_s"] = round(time.perf_counter() - started)
        figures["load_before_cpu_window"] = load_average()
        cpu = await measure_cpu(agent.pid, args.window)
        figures["scheduler_cpu_pct"] = round(cpu["pct"], 1)
        figures["scheduler_cpu_slices_pct"] = [round(x, 1) for x in cpu["slices"]]
        figures["cpu_window_s"] = args.window
        if args.posts > 0:
            figures.update(await e2e(stub, root, procs, args))
        figures["load_after"] = load_average()
    figures["machine"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    figures["conditions"] = (
        "memory (minilm), llm (fake; near-duplicate check only for equal texts), social (sandbox,"
        " unlimited tier), agent (sqlite, one replica, default intervals) as subprocesses; load"
        " averages are the machine's 1/5/15 min"
    )
    figures["targets"] = {"scheduler_cpu_pct": 10, "e2e_posts_per_s": 100}
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--personas", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0, help="CPU window, seconds")
    parser.add_argument(
        "--settle", type=float, default=30.0, help="seconds after the leases, before the window"
    )
    parser.add_argument("--posts", type=int, default=1000, help="forced posts measured")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="SERVICE=FILE",
        help="run a service under cProfile, stats to FILE (repeatable)",
    )
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
