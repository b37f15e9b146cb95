"""A small threaded HTTP/1.1 server on 127.0.0.1: the shell of every local stand-in for an API.

Not test-only: chain's embedded mode serves its local Solana and Jupiter with it in production
processes; ``puppet_runtime.testing.http_fake`` is this shell with JSON answers.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

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

FailureKind = Literal["http500", "timeout"]
"""`http500` answers 500; `timeout` holds the request unanswered, then closes the connection."""


class LocalHttpServer:
    """Serves `handler` on 127.0.0.1 (port 0) from a daemon thread, one thread per connection.

    Headers and body go out in one write with TCP_NODELAY, so keep-alive clients never wait on
    Nagle's algorithm.
    """

    def __init__(
        self, handler: Handler, *, name: str, stall_s: float = 30.0, poll_s: float = 0.05
    ) -> None:
        self._handler = handler
        self._name = name
        self._stall_s = stall_s
        self._poll_s = poll_s
        self._failures: collections.deque[FailureKind] = collections.deque()
        self._failures_lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def fail_next(self, n: int = 1, kind: FailureKind = "http500") -> None:
        """Make the next `n` requests fail as `kind`; a `timeout` is held for `stall_s` seconds
        or until `stop()`."""
        if kind not in ("http500", "timeout"):
            raise ValueError(f"unknown failure kind: {kind}")
        with self._failures_lock:
            self._failures.extend([kind] * n)

    def _dispatch(self, request: Request) -> Response | None:
        with self._failures_lock:
            failure = self._failures.popleft() if self._failures else None
        if failure == "timeout":
            self._closing.wait(self._stall_s)
            return None
        if failure == "http500":
            return Response(500, b'{"error":"injected failure"}')
        return self._handler(request)

    def start(self) -> str:
        """Start serving (idempotent); returns the base URL."""
        if self._server is None:
            self._closing.clear()
            server = _Server(self._name, _handler_class(self._dispatch))
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": self._poll_s},
                daemon=True,
                name=self._name,
            )
            self._server, self._thread = server, thread
            thread.start()
            logger.info("%s listening on %s", self._name, self.url)
        return self.url

    def stop(self) -> None:
        """Stop accepting, release stalled requests, close the listening socket (idempotent)."""
        self._closing.set()
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


class LocalHttpApp:
    """Base of a local stand-in for an outside API: its own LocalHttpServer, started and stopped
    with it (also as a context manager); subclasses answer in ``_serve``."""

    def __init__(self, *, name: str, stall_s: float = 30.0) -> None:
        self._http = LocalHttpServer(self._serve, name=name, stall_s=stall_s)

    def _serve(self, request: Request) -> Response | None:
        raise NotImplementedError

    def start(self) -> str:
        """Serve on 127.0.0.1 on a free port; returns the base URL."""
        return self._http.start()

    def stop(self) -> None:
        """Stop serving; stalled requests are released."""
        self._http.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321."""
        return self._http.url

    def fail_next(self, n: int = 1, kind: FailureKind = "http500") -> None:
        """Make the next `n` HTTP requests fail: `http500` answers 500, `timeout` never answers
        (the connection is held for `stall_s` seconds or until `stop()`, then closed)."""
        self._http.fail_next(n, kind)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.name = name

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("%s: client %s went away", self.name, client_address, exc_info=True)


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
        do_PUT = _serve  # noqa: N815
        do_PATCH = _serve  # noqa: N815
        do_DELETE = _serve  # noqa: N815

    return _Handler
