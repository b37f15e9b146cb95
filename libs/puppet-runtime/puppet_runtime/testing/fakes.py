"""The shell of every fake outside system (OpenAI, X, Jupiter): real HTTP/1.1 on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from puppet_runtime.local_http import LocalHttpServer, Request, Response


@dataclass(frozen=True)
class HttpAnswer:
    """A fake HTTP server's answer: status, a JSON-serialisable body, extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


HttpResponder = Callable[[str, str, dict[str, str], bytes], HttpAnswer]
"""(method, path with query, lower-cased headers, raw body) -> the answer; runs in a thread."""


@contextmanager
def http_fake(respond: HttpResponder, *, name: str = "http-fake") -> Iterator[str]:
    """Serve ``respond`` over HTTP/1.1 on 127.0.0.1:<free port>; yields ``http://127.0.0.1:N``.

    The fake keeps its state and decides each answer; ``puppet_runtime.local_http`` serves it on
    threads, and it stops with the block.
    """

    def handle(request: Request) -> Response:
        answer = respond(request.method, request.path, request.headers, request.body)
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        return Response(answer.status, data, headers=dict(answer.headers))

    server = LocalHttpServer(handle, name=name, poll_s=0.01)
    try:
        yield server.start()
    finally:
        server.stop()
