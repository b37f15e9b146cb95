"""LLM service benchmark: local decoding speed, ComposePost latency, the service's own overhead.

`local_tokens_per_s` comes from bench/llm_local.py (SmolLM2-135M through llama-cpp-python, in
process). `compose_p50_ms` is ComposePost through `python -m puppet_llm` (a subprocess on the
embedded SQLite store) with the local model. `service_overhead_ms` runs the same service with the
instant fake provider and subtracts the provider's own time (Usage.provider_ms) from each call's
client latency: prompt building, post rules, budget check, usage record and gRPC. The last line
printed is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import timestamp_pb2
from puppet.llm.v1 import llm_pb2 as m
from puppet.llm.v1 import llm_service_pb2 as pb
from puppet.llm.v1 import llm_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, wait_serving

if TYPE_CHECKING:
    from puppet.llm.v1.llm_service_pb2_grpc import LlmServiceAsyncStub

PERSONA = m.Persona(
    agent="agents/bench",
    display_name="Bench",
    description="a dry observer of tea, trains and weather",
    traits=["dry", "curious"],
    speaking_style="short and plain",
    tone="deadpan",
)
CONTEXT = m.CompositionContext(
    now=timestamp_pb2.Timestamp(seconds=1_795_745_953),
    mood=m.Mood(valence=0.3, arousal=0.4, dominance=0.6),
    memories=[
        m.RecalledMemory(content="I judged a tea contest once", kind="core", importance=0.9),
        m.RecalledMemory(content="The 8:14 train was late again", kind="event", importance=0.4),
    ],
    recent_posts=["rain again. the umbrella wins this round"],
)


def measure_local() -> dict[str, Any]:
    """bench/llm_local.py's figures (it runs its own event loop, so call it outside one)."""
    module = importlib.import_module("llm_local")  # bench/llm_local.py, beside this file
    figures: dict[str, Any] = module.measure_local()
    return figures


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@asynccontextmanager
async def service(provider: str) -> AsyncIterator[LlmServiceAsyncStub]:
    """python -m puppet_llm with the given default provider, on a fresh data dir."""
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_LLM_PORT": str(port),
        "PUPPET_LLM_DATA_DIR": tempfile.mkdtemp(prefix="bench-llm-"),
        "PUPPET_LLM_PROVIDER": provider,
        "PUPPET_LLM_LOG_LEVEL": "WARNING",
        "PUPPET_LLM_DRAIN_S": "0",
        "PUPPET_LLM_DEFAULT_DAILY_COST_LIMIT_USD": "0",
    }
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "puppet_llm", env=env)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, "puppet.llm.v1.LlmService", timeout_s=300)
            yield rpc.LlmServiceStub(channel)
    finally:
        server.terminate()
        await server.wait()


async def compose(stub: LlmServiceAsyncStub, n: int) -> tuple[list[float], list[float]]:
    """Client latencies and provider times (ms) of n sequential ComposePost calls."""
    latencies, provider = [], []
    for i in range(n):
        request = pb.ComposePostRequest(persona=PERSONA, context=CONTEXT, topic=f"day {i}")
        started = time.perf_counter()
        reply = await stub.ComposePost(request, timeout=120)
        latencies.append((time.perf_counter() - started) * 1000)
        provider.append(reply.composition.usage.provider_ms)
    return latencies, provider


async def main(local: dict[str, Any], compose_calls: int, overhead_calls: int) -> dict[str, object]:
    async with service("local") as stub:
        await compose(stub, 1)  # first call pays for page faults of the weights
        latencies, _ = await compose(stub, compose_calls)
    async with service("fake") as stub:
        await compose(stub, 50)
        client, provider = await compose(stub, overhead_calls)
    overhead = [c - p for c, p in zip(client, provider, strict=True)]
    figures: dict[str, object] = {
        "local_tokens_per_s": local["local_tokens_per_s"],
        "compose_p50_ms": round(statistics.median(latencies), 1),
        "compose_p90_ms": round(percentile(latencies, 90), 1),
        "service_overhead_ms": round(statistics.median(overhead), 3),
        "service_overhead_p90_ms": round(percentile(overhead, 90), 3),
        "compose_calls": compose_calls,
        "overhead_calls": overhead_calls,
        "local": local,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"local_tokens_per_s": 50, "service_overhead_ms": 2},
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compose-calls", type=int, default=10)
    parser.add_argument("--overhead-calls", type=int, default=500)
    args = parser.parse_args()
    local = measure_local()
    print(json.dumps(asyncio.run(main(local, args.compose_calls, args.overhead_calls))))
