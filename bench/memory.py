"""Memory service benchmark: recall over 100,000 memories, create throughput, local embedding.

Runs `python -m puppet_memory` as a subprocess on the embedded SQLite store and drives it over a
real gRPC channel. Vectors are synthetic (clustered, unit length, 384-d) and precomputed, so the
recall and create figures measure the service, not the embedder; `embed_per_s` measures the local
MiniLM embedder on its own, batched. The last line printed is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
import numpy.typing as npt
from embed import cpu_model, tweets
from embed import measure as measure_embedding

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub
from puppet.memory.v1 import memory_pb2 as mpb
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, wait_serving

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
TWEETS = tweets(1000)


def clustered_vectors(n: int, seed: int) -> npt.NDArray[np.float32]:
    """n unit vectors around 1,000 random centres, like topics in a persona's memories."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def memory_request(parent: str, i: int, vector: npt.NDArray[np.float32]) -> pb.CreateMemoryRequest:
    return pb.CreateMemoryRequest(
        parent=parent,
        memory=mpb.Memory(
            kind=mpb.MEMORY_KIND_GENERAL,
            content=f"{TWEETS[i % len(TWEETS)]} #{i}",
            importance=float(i % 10) / 10,
        ),
        embedding=mpb.Embedding(values=vector.tolist(), model=MODEL),
    )


async def load(stub: MemoryServiceAsyncStub, parent: str, vectors: npt.NDArray[np.float32]) -> None:
    batch = 1000
    for start in range(0, len(vectors), batch):
        requests = [
            memory_request(parent, i, vectors[i])
            for i in range(start, min(start + batch, len(vectors)))
        ]
        await stub.BatchCreateMemories(
            pb.BatchCreateMemoriesRequest(parent=parent, requests=requests), timeout=120
        )


async def create_rate(stub: MemoryServiceAsyncStub, parent: str, n: int, concurrency: int) -> float:
    vectors = clustered_vectors(n, seed=7)
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await stub.CreateMemory(memory_request(parent, i, vectors[i]), timeout=10)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def recall_latencies(
    stub: MemoryServiceAsyncStub, parent: str, queries: npt.NDArray[np.float32]
) -> list[float]:
    timings = []
    for query in queries:
        request = pb.RecallMemoriesRequest(
            parent=parent, embedding=mpb.Embedding(values=query.tolist(), model=MODEL), top_k=10
        )
        started = time.perf_counter()
        response = await stub.RecallMemories(request, timeout=10)
        timings.append((time.perf_counter() - started) * 1000)
        assert len(response.results) == 10
    return timings


def numpy_floor_ms(vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.float32]) -> float:
    """In-process exact top-10 on the same matrix: the floor the service is compared with."""
    timings = []
    for query in queries:
        started = time.perf_counter()
        scores = vectors @ query
        top = np.argpartition(-scores, 10)[:10]
        top[np.argsort(-scores[top])]
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def main(memories: int, queries: int, creates: int) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_MEMORY_PORT": str(port),
        "PUPPET_MEMORY_DATA_DIR": str(data),
        "PUPPET_MEMORY_LOG_LEVEL": "WARNING",
        "PUPPET_MEMORY_DEFAULT_MEMORY_BUDGET": str(memories * 2),
    }
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "puppet_memory", env=env)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, timeout_s=120)
            stub = rpc.MemoryServiceStub(channel)
            for persona in ("bench", "writer"):
                await stub.CreatePersona(pb.CreatePersonaRequest(persona_id=persona))
            vectors = clustered_vectors(memories, seed=1)
            started = time.perf_counter()
            await load(stub, "agents/bench", vectors)
            load_s = time.perf_counter() - started
            probe = clustered_vectors(queries, seed=2)
            await recall_latencies(stub, "agents/bench", probe[:5])  # loads the index
            recall = await recall_latencies(stub, "agents/bench", probe)
            create = await create_rate(stub, "agents/writer", creates, concurrency=8)
        floor = numpy_floor_ms(vectors, probe)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    return {
        "memories": memories,
        "load_s": round(load_s, 1),
        "recall_p50_ms": round(statistics.median(recall), 2),
        "recall_p99_ms": round(percentile(recall, 99), 2),
        "recall_numpy_floor_p50_ms": round(floor, 2),
        "create_per_s": round(create),
        **await measure_embedding(
            argparse.Namespace(sentences=512, single=50, repeats=2, threads=None)
        ),
        "server_exit_code": server.returncode,
        "machine": f"{os.cpu_count()} cpu, {cpu_model()}",
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--creates", type=int, default=3_000)
    args = parser.parse_args()
    figures = asyncio.run(main(args.memories, args.queries, args.creates))
    print(json.dumps(figures))
