"""Benchmark the embedded SmolLM2 model: decoding tokens per second on this machine.

    uv run --frozen --no-sync python bench/llm_local.py [--runs 5] [--max-tokens 128]

Figures go to stdout, one per line; the last line is one JSON object with ``local_tokens_per_s``
(median over the runs of completion tokens after the first / the time spent decoding them).
``measure_local()`` returns the same figures for ``bench/llm.py``; call it outside a running
event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from puppet_llm.providers import ChatMessage, GenerationParams
from puppet_llm.providers.local import LocalProvider

log = logging.getLogger("bench.llm_local")

TARGET_TOKENS_PER_S = 50.0
_PROMPTS = [
    "Write a long, rambling thread about why your coffee tastes like the blockchain.",
    "Tell a long story about a cat who trades memecoins, with many details.",
    "Explain, at length and with examples, how to survive a bear market.",
    "Describe your perfect day in Lisbon in as much detail as you can.",
]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line naming the hardware and software the figures were taken on."""
    try:
        llama = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        llama = "missing"
    return (
        f"{os.cpu_count() or 0} CPUs ({cpu_model()}), {platform.platform()}, "
        f"Python {platform.python_version()}, llama-cpp-python {llama}"
    )


async def _measure(runs: int, max_tokens: int, threads: int | None) -> dict[str, float | int | str]:
    started = time.perf_counter()
    provider = LocalProvider(n_threads=threads)
    load_s = time.perf_counter() - started
    log.info("load: %.2f s (%d threads)", load_s, provider.n_threads)
    system = ChatMessage("system", "You are a verbose storyteller who never stops early.")
    rates, wall_rates, prefill, tokens = [], [], [], []
    try:
        for run in range(runs):
            prompt = ChatMessage("user", _PROMPTS[run % len(_PROMPTS)])
            params = GenerationParams(max_tokens=max_tokens, temperature=0.8, seed=run + 1)
            generation = await provider.generate([system, prompt], params, timeout_s=120)
            decode_ms = float(generation.extra["decode_ms"])
            prefill_ms = float(generation.extra["prefill_ms"])
            rate = float(generation.extra["decode_tokens_per_s"])
            wall = generation.completion_tokens / max(generation.provider_ms / 1000.0, 1e-9)
            log.info(
                "run %d: %d tokens (%s), prefill %.0f ms, decode %.0f ms: %.1f tok/s decoding, "
                "%.1f tok/s end to end",
                run + 1,
                generation.completion_tokens,
                generation.finish_reason,
                prefill_ms,
                decode_ms,
                rate,
                wall,
            )
            rates.append(rate)
            wall_rates.append(wall)
            prefill.append(prefill_ms)
            tokens.append(generation.completion_tokens)
    finally:
        await provider.close()
    median = statistics.median(rates)
    log.info(
        "decoding: %.1f tok/s median (best %.1f, worst %.1f); target >= %.0f: %s",
        median,
        max(rates),
        min(rates),
        TARGET_TOKENS_PER_S,
        "met" if median >= TARGET_TOKENS_PER_S else "MISSED",
    )
    return {
        "local_tokens_per_s": round(median, 1),
        "local_tokens_per_s_end_to_end": round(statistics.median(wall_rates), 1),
        "local_prefill_ms_p50": round(statistics.median(prefill), 1),
        "local_load_s": round(load_s, 2),
        "local_completion_tokens_p50": int(statistics.median(tokens)),
        "local_threads": provider.n_threads,
    }


def measure_local(
    runs: int = 5, max_tokens: int = 128, threads: int | None = None
) -> dict[str, float | int | str]:
    """Load the local model (``threads`` None: every usable CPU, as the service runs it),
    generate ``runs`` completions of up to ``max_tokens`` tokens and return the decoding
    figures (``local_tokens_per_s`` first)."""
    log.info("machine: %s", machine())
    return asyncio.run(_measure(runs, max_tokens, threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    figures = measure_local(args.runs, args.max_tokens, args.threads)
    log.info("%s", json.dumps(figures))


if __name__ == "__main__":
    main()
