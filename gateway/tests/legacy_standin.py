"""TEST FIXTURE: an HTTP/1.1 server that replays the legacy engine's captured answers.

It stands in for the Node engine in split tests only: each request is answered with the first
capture (tests/data/legacy-captures) of the same method and path, preferring one whose request
body matches too. It is not a replacement of the legacy engine and holds no state.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).parent / "data" / "legacy-captures"


def load_captures(folder: Path = CAPTURES) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


class LegacyStandin:
    """Serves the captures on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, captures: list[dict[str, Any]] | None = None) -> None:
        self.captures = load_captures() if captures is None else captures
        self.hits: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LegacyStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, method: str, path: str, body: bytes) -> dict[str, Any] | None:
        """The capture to replay for this request, or None (Express's 404 page)."""
        same_route = [
            c
            for c in self.captures
            if c["request"]["method"] == method and c["request"]["path"] == path
        ]
        for capture in same_route:
            if _body_of(capture["request"]) == body:
                return capture
        return same_route[0] if same_route else None


def _body_of(request: dict[str, Any]) -> bytes:
    if "body" not in request:
        return b""
    if request.get("body_is_json"):
        return json.dumps(request["body"]).encode()
    return str(request["body"]).encode()


def _handler(standin: LegacyStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out as two writes: without this, Nagle plus delayed ACK
            # cost 40 ms a request through Envoy (PLATFORM-NOTES §1.1).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _replay(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            capture = standin.answer(self.command, path, body)
            if capture is None:
                self._send(404, "text/html; charset=utf-8", _express_404(self.command, path))
                return
            standin.hits[capture["name"]] += 1
            response = capture["response"]
            if response.get("body_is_json"):
                payload = json.dumps(response["body"]).encode()
            else:
                payload = (response.get("body_raw") or "").encode()
            content_type = response["headers"].get("content-type", "application/json")
            self._send(response["status"], content_type, payload)

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.send_header("x-legacy-standin", "1")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _replay  # noqa: N815

    return Handler


def _express_404(method: str, path: str) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n'
        f"</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
    ).encode()
