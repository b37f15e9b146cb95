"""The shell of every fake outside system (OpenAI, X, Jupiter): real HTTP/1.1 on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpAnswer:
    """A fake HTTP server's answer: status, a JSON-serialisable body, extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


HttpResponder = Callable[[str, str, dict[str, str], bytes], HttpAnswer]
"""(method, path with query, lower-cased headers, raw body) -> the answer; runs in a thread."""


class _FakeHandler(BaseHTTPRequestHandler):
    server: _FakeServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes: without this, Nagle plus delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.respond(self.command, self.path, headers, raw)
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(f"{self.server.name}: {format}", *args)


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, respond: HttpResponder, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _FakeHandler)
        self.respond = respond
        self.name = name

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: client %s went away", self.name, client_address, exc_info=True)


@contextmanager
def http_fake(respond: HttpResponder, *, name: str = "http-fake") -> Iterator[str]:
    """Serve ``respond`` over HTTP/1.1 on 127.0.0.1:<free port>; yields ``http://127.0.0.1:N``.

    The shell of every fake outside system (OpenAI, X, Jupiter): the fake keeps its state and
    decides each answer, this serves it on threads and stops with the block.
    """
    server = _FakeServer(respond, name)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
