"""A small real HTTP server speaking OpenAI's POST /v1/embeddings, for tests (stdlib only)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(
                400,
                _error(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
            )
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.server.fake.answer(self.path, headers, body)
        if isinstance(payload, Failure):
            extra = (
                {}
                if payload.retry_after_ms is None
                else {"retry-after-ms": str(payload.retry_after_ms)}
            )
            self._send(status, _error(payload.message, payload.type, payload.code), extra)
        else:
            self._send(status, payload)

    def _send(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", f"req_{len(self.server.fake.requests)}")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake openai: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake openai: client %s went away", client_address, exc_info=True)


@contextmanager
def serve(api_key: str = "sk-test-fake-key") -> Iterator[FakeOpenAI]:
    """Run a fake on 127.0.0.1:<free port>; ``fake.base_url`` ends in ``/v1`` like OpenAI's."""
    fake = FakeOpenAI(api_key=api_key)
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.01,), name="fake-openai", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
