"""A small real HTTP server speaking OpenAI's POST /v1/embeddings, for tests (stdlib only)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from puppet_runtime.testing import HttpAnswer, http_fake

MODELS = frozenset({"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"})
NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def raw_vector(text: str, dimension: int) -> np.ndarray:
    """The fake's deterministic, deliberately *un*-normalised vector for ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(0.0, 3.0, dimension).astype(np.float32)


@dataclass
class Failure:
    """A scripted error answer: HTTP status, OpenAI error fields, optional delay/retry hint."""

    status: int
    message: str = "scripted failure"
    type: str = "server_error"
    code: str | None = None
    retry_after_ms: int | None = 1


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeOpenAI:
    """State and knobs of the fake; start it with :func:`serve`.

    Data comes back in reverse index order (clients must sort by ``index``), as the API does not
    promise order. Failures queued in ``failures`` are answered one per request, first.
    """

    api_key: str
    failures: list[Failure] = field(default_factory=list)
    always: Failure | None = None
    delay_s: float = 0.0
    force_dimension: int | None = None
    requests: list[Recorded] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Recorded(path, headers, body))
            scripted = self.failures.pop(0) if self.failures else self.always
        if self.delay_s:
            self._stopping.wait(self.delay_s)
        if not path.endswith("/embeddings"):
            return 404, _error(f"Invalid URL (POST {path})", "invalid_request_error")
        if headers.get("authorization") != f"Bearer {self.api_key}":
            given = headers.get("authorization", "").removeprefix("Bearer ")
            # Echo the whole wrong key: the client must not pass the message on.
            return 401, _error(
                f"Incorrect API key provided: {given}.", "invalid_request_error", "invalid_api_key"
            )
        if scripted is not None:
            return scripted.status, scripted
        return self._embeddings(body)

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, Any]:
        model, inputs = body.get("model"), body.get("input")
        if model not in MODELS:
            return 404, _error(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        if isinstance(inputs, str):
            inputs = [inputs]
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(t, str) for t in inputs)
        ):
            return 400, _error(
                "'input' must be a string or an array of strings", "invalid_request_error"
            )
        if any(text == "" for text in inputs):
            return 400, _error("'$.input' is invalid: empty string", "invalid_request_error")
        dimension = NATIVE_DIMENSIONS[model]
        if "dimensions" in body:
            if not model.startswith("text-embedding-3"):
                return 400, _error(
                    "This model does not support specifying dimensions.", "invalid_request_error"
                )
            dimension = int(body["dimensions"])
        dimension = self.force_dimension or dimension
        as_base64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _encode(raw_vector(t, dimension), as_base64),
            }
            for i, t in enumerate(inputs)
        ]
        tokens = sum(len(t.split()) for t in inputs)
        return 200, {
            "object": "list",
            "data": data[::-1],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _encode(vector: np.ndarray, as_base64: bool) -> Any:
    if as_base64:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(v) for v in vector]


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _respond(
    fake: FakeOpenAI, method: str, path: str, headers: dict[str, str], raw: bytes
) -> HttpAnswer:
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        msg = "We could not parse the JSON body of your request."
        return HttpAnswer(400, _error(msg, "invalid_request_error"))
    status, payload = fake.answer(path, headers, body)
    extra = {"x-request-id": f"req_{len(fake.requests)}"}
    if not isinstance(payload, Failure):
        return HttpAnswer(status, payload, extra)
    if payload.retry_after_ms is not None:
        extra["retry-after-ms"] = str(payload.retry_after_ms)
    return HttpAnswer(status, _error(payload.message, payload.type, payload.code), extra)


@contextmanager
def serve(api_key: str = "sk-test-fake-key") -> Iterator[FakeOpenAI]:
    """Run a fake on 127.0.0.1:<free port>; ``fake.base_url`` ends in ``/v1`` like OpenAI's."""
    fake = FakeOpenAI(api_key=api_key)
    with http_fake(partial(_respond, fake), name="fake-openai") as url:
        fake.base_url = f"{url}/v1"
        try:
            yield fake
        finally:
            fake._stopping.set()
