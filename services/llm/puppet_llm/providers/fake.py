"""An instant, deterministic provider for tests and the service-overhead benchmark."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from puppet_llm.providers import (
    ChatMessage,
    Generation,
    GenerationParams,
    ProviderError,
    ProviderUnavailable,
)


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One ``generate`` call as the fake received it."""

    messages: tuple[ChatMessage, ...]
    params: GenerationParams
    timeout_s: float


class FakeProvider:
    """Answers without a model. Each call takes the next ``script`` entry (a text is returned,
    a :class:`ProviderError` is raised); once the script is used up it echoes: ``echo <hash>:
    <first line of the last user message>``, cut to ``max_tokens`` words, where ``<hash>`` is
    six hex digits of the whole message, so different prompts give different texts. With a JSON
    schema the echo is the smallest object valid against it. Tokens are counted as
    whitespace-separated words. ``delay_s`` simulates model time; past ``timeout_s`` the call
    fails with :class:`ProviderUnavailable`, like a hosted provider's deadline.
    """

    def __init__(
        self,
        delay_s: float = 0.0,
        script: Sequence[str | ProviderError] | None = None,
        *,
        model: str = "fake-echo",
    ) -> None:
        self._delay_s = delay_s
        self._script = list(script or ())
        self._model = model
        self.calls: list[FakeCall] = []

    @property
    def name(self) -> str:
        return "fake"

    @property
    def model(self) -> str:
        return self._model

    async def close(self) -> None:
        return None

    async def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, timeout_s: float
    ) -> Generation:
        started = time.perf_counter()
        self.calls.append(FakeCall(tuple(messages), params, timeout_s))
        if self._delay_s > 0:
            if self._delay_s > timeout_s:
                await asyncio.sleep(max(timeout_s, 0.0))
                raise ProviderUnavailable(f"fake: no answer within the {timeout_s:.3g} s deadline")
            await asyncio.sleep(self._delay_s)
        finish = "stop"
        if self._script:
            entry = self._script.pop(0)
            if isinstance(entry, ProviderError):
                raise entry
            text = entry
        elif params.json_schema is not None:
            text = json.dumps(minimal_instance(params.json_schema), separators=(",", ":"))
        else:
            text, finish = _echo(messages, params.max_tokens)
        return Generation(
            text=text,
            model=self._model,
            prompt_tokens=sum(len(m.content.split()) for m in messages),
            completion_tokens=len(text.split()),
            finish_reason=finish,
            provider_ms=(time.perf_counter() - started) * 1000.0,
        )


def _echo(messages: Sequence[ChatMessage], max_tokens: int) -> tuple[str, str]:
    last = next((m.content for m in reversed(messages) if m.role == "user"), "")
    digest = hashlib.sha256(last.encode()).hexdigest()[:6]
    first_line = next((line.strip() for line in last.splitlines() if line.strip()), "")
    words = f"echo {digest}: {first_line}".split()
    if len(words) > max(max_tokens, 1):
        return " ".join(words[: max(max_tokens, 1)]), "length"
    return " ".join(words), "stop"


def minimal_instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """The smallest value valid against a JSON schema (the subset structured outputs use:
    ``type``, ``enum``, ``const``, ``properties``/``required``, ``items``/``minItems``,
    ``minLength``, ``minimum``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return minimal_instance(_resolve(root, str(schema["$ref"])), root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], root)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return minimal_instance(merged, root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: minimal_instance(properties.get(name, {}), root)
            for name in schema.get("required", [])
        }
    if kind == "array":
        item = schema.get("items", {})
        return [minimal_instance(item, root) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = 0 if low is None else low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref is supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, Mapping):
        raise ValueError(f"$ref {ref!r} does not point at a schema")
    return node
