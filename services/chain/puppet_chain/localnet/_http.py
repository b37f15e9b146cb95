"""A small threaded HTTP/1.1 server on 127.0.0.1 shared by the local Solana and Jupiter fakes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    """What a route handler sees of one HTTP request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    """What a route handler answers; `None` from a handler means "close without answering"."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response | None]


class LocalHttpServer:
    """Serves `handler` on 127.0.0.1 (port 0) from a daemon thread, one thread per connection.

    Headers and body go out in one write with TCP_NODELAY, so keep-alive clients never wait on
    Nagle's algorithm.
    """

    def __init__(self, handler: Handler, *, name: str) -> None:
        self._handler = handler
        self._name = name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start serving (idempotent); returns the base URL."""
        if self._server is None:
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self._handler))
            server.daemon_threads = True
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=self._name,
            )
            self._server, self._thread = server, thread
            thread.start()
            logger.info("%s listening on %s", self._name, self.url)
        return self.url

    def stop(self) -> None:
        """Stop accepting and close the listening socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        """Whether the server is started."""
        return self._server is not None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321."""
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


def _handler_class(handler: Handler) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                response = handler(Request(self.command, self.path, headers, body))
            except Exception:
                logger.exception("local http handler failed")
                response = Response(500, b'{"error":"internal error"}')
            if response is None:
                self.close_connection = True
                return
            reason = self.responses.get(response.status, ("",))[0]
            extra = "".join(f"{key}: {value}\r\n" for key, value in response.headers.items())
            head = (
                f"HTTP/1.1 {response.status} {reason}\r\n"
                f"Content-Type: {response.content_type}\r\n"
                f"Content-Length: {len(response.body)}\r\n{extra}\r\n"
            ).encode()
            self.wfile.write(head + response.body)

        do_GET = _serve  # noqa: N815
        do_POST = _serve  # noqa: N815

    return _Handler
