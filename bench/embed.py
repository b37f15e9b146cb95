"""Benchmark the local MiniLM embedder (onnxruntime): one-sentence latency and batched throughput.

    uv run --frozen --no-sync python bench/embed.py [--sentences 512] [--repeats 3] [--threads N]

Figures go to stdout, one per line; the last line is one JSON object
``{"embed_per_s", "embed_per_cpu_s", "embed_single_p50_ms", "embed_single_cpu_ms"}`` (medians).
The CPU-time figures are the ones to compare on a shared machine: other tenants' load lowers the
wall-clock figures far more than these.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

from puppet_memory.embedding.minilm import MiniLMEmbedder

log = logging.getLogger("bench.embed")

_OPENERS = ["gm frens,", "hot take:", "ngl", "honestly", "breaking:", "reminder:", "PSA:", "lol"]
_SUBJECTS = [
    "the market",
    "SOL",
    "my portfolio",
    "this new memecoin",
    "Jupiter",
    "the validators",
    "every bot on the timeline",
    "Claudia",
    "Coby",
    "the weather in Lisbon",
    "my coffee",
    "the devs",
]
_VERBS = [
    "is pumping again",
    "just rugged",
    "looks bullish",
    "is bleeding",
    "shipped a huge update",
    "won't stop posting",
    "is the only thing keeping me sane",
    "made me laugh",
    "got rate limited",
    "hit a new all-time high",
]
_TAILS = [
    "and I'm not even surprised",
    "who else is watching this?",
    "not financial advice",
    "time to touch grass",
    "see you on the other side",
    "can't make this up",
    "wagmi",
    "ser, this is a wendy's",
    "remember when fees were high?",
    "thread below",
]
_EXTRAS = ["🚀", "🌕", "#solana", "$SOL", "@puppet_engine", "📉", "😂", "#memes", "", "", ""]


def tweets(count: int, seed: int = 7) -> list[str]:
    """``count`` deterministic tweet-like sentences of 8-45 words."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = [rng.choice(_OPENERS), rng.choice(_SUBJECTS), rng.choice(_VERBS)]
        for _ in range(rng.randint(0, 3)):
            parts += [rng.choice(["and", "but", "while", "because"]), rng.choice(_SUBJECTS)]
            parts.append(rng.choice(_VERBS))
        parts += [rng.choice(_TAILS), rng.choice(_EXTRAS), rng.choice(_EXTRAS)]
        out.append(" ".join(p for p in parts if p))
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def measure(args: argparse.Namespace) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    # No vector cache: the same sentences are embedded again and again here.
    embedder = MiniLMEmbedder(max_batch=32, threads=args.threads)
    log.info(
        "load (weights, graph build, session): %.2f s, %.2f CPU-s",
        time.perf_counter() - started,
        time.process_time() - cpu,
    )
    sentences = tweets(args.sentences)
    try:
        await embedder.embed(sentences[:64])  # warm-up: page in weights, allocate buffers
        latencies, cpu_costs = [], []
        for sentence in sentences[: args.single]:
            t0, c0 = time.perf_counter(), time.process_time()
            await embedder.embed([sentence])
            latencies.append((time.perf_counter() - t0) * 1000)
            cpu_costs.append((time.process_time() - c0) * 1000)
        rates, cpu_rates = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            await embedder.embed(sentences)
            rates.append(len(sentences) / (time.perf_counter() - t0))
            cpu_rates.append(len(sentences) / (time.process_time() - c0))
    finally:
        await embedder.close()
    latencies.sort()
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    cpu_p50 = statistics.median(cpu_costs)
    log.info("single sentence: p50 %.2f ms, p95 %.2f ms (%d runs)", p50, p95, len(latencies))
    log.info("single sentence: %.2f ms of process CPU time (median)", cpu_p50)
    log.info(
        "batched (32): %.0f sentences/s median, %.0f best, %.0f worst (%d x %d sentences)",
        statistics.median(rates),
        max(rates),
        min(rates),
        args.repeats,
        len(sentences),
    )
    # Per CPU-second is steadier than wall time on a shared machine: other tenants' load lowers
    # the wall figure but hardly this one.
    log.info("batched: %.0f sentences per CPU-second (median)", statistics.median(cpu_rates))
    return {
        "embed_per_s": round(statistics.median(rates), 1),
        "embed_per_cpu_s": round(statistics.median(cpu_rates), 1),
        "embed_single_p50_ms": round(p50, 2),
        "embed_single_cpu_ms": round(cpu_p50, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--single", type=int, default=200, help="single-sentence runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="embedder worker threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log.info(
        "machine: %d CPUs (%s), %s, Python %s, onnxruntime %s",
        os.cpu_count() or 0,
        cpu_model(),
        platform.platform(),
        platform.python_version(),
        _version("onnxruntime"),
    )
    log.info("load average before: %s", _load_average())
    figures = asyncio.run(measure(args))
    log.info("load average after: %s", _load_average())
    log.info("%s", json.dumps(figures))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


if __name__ == "__main__":
    main()
