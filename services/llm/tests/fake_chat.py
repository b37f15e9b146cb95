"""A real HTTP server speaking OpenAI's POST /v1/chat/completions, for tests (stdlib only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from puppet_runtime.testing import HttpAnswer, http_fake

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
}


@dataclass
class Reply:
    """A scripted answer: an HTTP error (``status`` >= 400) or a completion (``text``), after
    ``delay_s``. ``retry_after_s``/``retry_after_ms`` add those headers."""

    status: int = 200
    text: str | None = None
    message: str = "scripted failure"
    delay_s: float = 0.0
    retry_after_s: str | None = None
    retry_after_ms: str | None = None
    finish_reason: str = "stop"


@dataclass
class Recorded:
    """One request as the server saw it, with its arrival time (``time.monotonic``)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class FakeChat:
    """State and knobs of the fake; start it with :func:`serve`.

    Without a script it answers ``text`` (or, when ``response_format`` is a JSON schema,
    ``json_object``). Replies queued in ``script`` are used one per request, first.
    """

    api_key: str
    text: str = "gm from the fake"
    json_object: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    script: list[Reply] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    base_url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def answer(
        self, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(Recorded(path, headers, body, time.monotonic()))
            reply = self.script.pop(0) if self.script else Reply()
        if reply.delay_s:
            self._stopping.wait(reply.delay_s)
        if path != "/v1/chat/completions":
            return 404, _error(f"Invalid URL (POST {path})", "invalid_request_error"), {}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            given = headers.get("authorization", "").removeprefix("Bearer ")
            # Echo the whole wrong key, as a careless server might: clients must not pass it on.
            return (
                401,
                _error(
                    f"Incorrect API key provided: {given}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
                {},
            )
        if reply.status >= 400:
            kind, code = _ERROR_TYPES.get(reply.status, ("server_error", None))
            extra = {}
            if reply.retry_after_s is not None:
                extra["retry-after"] = reply.retry_after_s
            if reply.retry_after_ms is not None:
                extra["retry-after-ms"] = reply.retry_after_ms
            return reply.status, _error(reply.message, kind, code), extra
        problem = _validate(body)
        if problem:
            return 400, _error(problem, "invalid_request_error"), {}
        return 200, self._completion(body, reply), {}

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        if reply.text is not None:
            content = reply.text
        elif fmt.get("type") == "json_schema":
            content = json.dumps(self.json_object)
        else:
            content = self.text
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len(content.split())
        return {
            "id": f"chatcmpl-fake{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _validate(body: dict[str, Any]) -> str | None:
    """The checks OpenAI makes that a client could get wrong; None when the body is fine."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
            "developer",
        ):
            return f"Invalid value for 'messages[{i}].role'"
        if not isinstance(message.get("content"), str):
            return f"Invalid type for 'messages[{i}].content'"
    stop = body.get("stop")
    if stop is not None and (not isinstance(stop, list | str) or len(stop) > 4):
        return "'stop' must be a string or an array of at most 4 strings"
    fmt = body.get("response_format")
    if fmt is not None:
        if fmt.get("type") == "json_schema":
            schema = fmt.get("json_schema")
            if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
                return "Missing required parameter: 'response_format.json_schema.name'"
            if not isinstance(schema.get("schema"), dict):
                return "Invalid type for 'response_format.json_schema.schema'"
        elif fmt.get("type") not in ("text", "json_object"):
            return "Invalid value for 'response_format.type'"
    return None


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _respond(
    fake: FakeChat, method: str, path: str, headers: dict[str, str], raw: bytes
) -> HttpAnswer:
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        msg = "We could not parse the JSON body of your request."
        return HttpAnswer(400, _error(msg, "invalid_request_error"))
    status, payload, extra = fake.answer(path, headers, body)
    return HttpAnswer(status, payload, {"x-request-id": f"req_{len(fake.requests)}", **extra})


@contextmanager
def serve(api_key: str = "sk-test-fake-key") -> Iterator[FakeChat]:
    """Run a fake on 127.0.0.1:<free port>; ``fake.base_url`` ends in ``/v1`` like OpenAI's."""
    fake = FakeChat(api_key=api_key)
    with http_fake(partial(_respond, fake), name="fake-chat") as url:
        fake.base_url = f"{url}/v1"
        try:
            yield fake
        finally:
            fake._stopping.set()
