"""Hosted chat models over the OpenAI chat-completions API: OpenAI itself and xAI's Grok."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema
from openai.types.shared_params.response_format_json_schema import JSONSchema

from puppet_llm.providers import (
    ChatMessage,
    Generation,
    GenerationParams,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from puppet_llm.providers._retry import Backoff, Deadline, is_retryable, retry_after_s

log = logging.getLogger(__name__)

GROK_BASE_URL = "https://api.x.ai/v1"
GROK_DEFAULT_MODEL = "grok-3-mini"

TokenParam = Literal["max_tokens", "max_completion_tokens"]

_MAX_DETAIL = 300
# Key-shaped tokens (OpenAI "sk-…", xAI "xai-…"), also when a provider echoes them half-masked.
_KEYLIKE = re.compile(r"\b(?:sk|xai)-[A-Za-z0-9_*.\-]{3,}")
_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


class OpenAIProvider:
    """One model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    The SDK's own retries are off; this class retries 408/409/429/5xx, timeouts and connection
    errors with exponential backoff and full jitter, waits what ``retry-after-ms``/``Retry-After``
    asks, and fits every attempt and wait inside the call's ``timeout_s``. Errors name the
    provider, the HTTP status and the provider's error code, never the key or the prompt, and do
    not chain to the SDK exception (whose request carries the key).

    ``token_param`` picks the field the output limit is sent in: ``max_tokens`` (what the legacy
    engine, Grok and most compatible servers read) or ``max_completion_tokens`` (required by
    OpenAI's reasoning models).
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        name: str = "openai",
        max_retries: int = 4,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        token_param: TokenParam = "max_tokens",
    ) -> None:
        if not api_key:
            raise ValueError(f"{name}: an API key is required")
        if not model:
            raise ValueError(f"{name}: a model is required")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self._name = name
        self._model = model
        self._secret = api_key
        self._max_retries = max_retries
        self._backoff = Backoff(backoff_base_s, backoff_max_s)
        self._token_param = token_param
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self._name!r}, model={self._model!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    async def close(self) -> None:
        await self._client.close()

    async def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, timeout_s: float
    ) -> Generation:
        started = time.perf_counter()
        deadline = Deadline(timeout_s)
        attempts = 0
        while True:
            attempts += 1
            remaining = deadline.remaining()
            if remaining <= 0:
                raise self._deadline_error(timeout_s, attempts - 1)
            try:
                async with asyncio.timeout(remaining):
                    completion = await self._create(messages, params, remaining)
            except TimeoutError:
                raise self._deadline_error(timeout_s, attempts) from None
            except openai.APIStatusError as exc:
                status = exc.status_code
                if not is_retryable(status):
                    raise ProviderRejected(self._describe(exc, attempts)) from None
                hint = retry_after_s(exc.response.headers)
                failure: Exception = (
                    ProviderRateLimited(self._describe(exc, attempts), hint)
                    if status == 429
                    else ProviderUnavailable(self._describe(exc, attempts))
                )
                what = f"HTTP {status}"
            except openai.APIConnectionError as exc:
                hint = None
                kind = (
                    "timed out" if isinstance(exc, openai.APITimeoutError) else "connection failed"
                )
                failure = ProviderUnavailable(f"{self._name}: {kind} ({attempts} attempts)")
                what = kind
            except openai.APIError as exc:  # a 2xx the SDK could not read
                raise ProviderUnavailable(
                    f"{self._name}: unreadable response ({type(exc).__name__})"
                ) from None
            else:
                return self._generation(completion, started, attempts)

            if attempts > self._max_retries:
                raise failure
            wait = hint if hint is not None else self._backoff.delay(attempts)
            if wait >= deadline.remaining():
                log.info(
                    "%s: %s on attempt %d; the wait of %.2f s would pass the deadline",
                    self._name,
                    what,
                    attempts,
                    wait,
                )
                raise failure
            log.info(
                "%s: %s on attempt %d of %d; retrying in %.2f s",
                self._name,
                what,
                attempts,
                self._max_retries + 1,
                wait,
            )
            await asyncio.sleep(wait)

    async def _create(
        self, messages: Sequence[ChatMessage], params: GenerationParams, timeout_s: float
    ) -> ChatCompletion:
        limit = params.max_tokens
        return await self._client.chat.completions.create(
            model=self._model,
            messages=[_message(m) for m in messages],
            temperature=params.temperature,
            max_tokens=limit if self._token_param == "max_tokens" else openai.omit,
            max_completion_tokens=(
                limit if self._token_param == "max_completion_tokens" else openai.omit
            ),
            stop=list(params.stop) if params.stop else openai.omit,
            seed=params.seed if params.seed is not None else openai.omit,
            response_format=(
                _response_format(params.json_schema)
                if params.json_schema is not None
                else openai.omit
            ),
            timeout=timeout_s,
        )

    def _generation(self, completion: ChatCompletion, started: float, attempts: int) -> Generation:
        if not completion.choices:
            raise ProviderUnavailable(f"{self._name}: the response had no choices")
        choice = completion.choices[0]
        if choice.message.refusal:
            raise ProviderRejected(
                f"{self._name}: the model refused: {self._redact(choice.message.refusal)}"
            )
        usage = completion.usage
        extra = {"response_id": completion.id}
        if completion.system_fingerprint:
            extra["system_fingerprint"] = completion.system_fingerprint
        return Generation(
            text=choice.message.content or "",
            # compatible servers do send nulls the SDK's types rule out
            model=cast("str | None", completion.model) or self._model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=cast("str | None", choice.finish_reason) or "stop",
            provider_ms=(time.perf_counter() - started) * 1000.0,
            attempts=attempts,
            extra=extra,
        )

    def _describe(self, exc: openai.APIStatusError, attempts: int) -> str:
        """Status, error type/code and (except for auth failures) the provider's message."""
        labels = ", ".join(str(x) for x in (exc.type, exc.code) if x)
        text = f"{self._name}: HTTP {exc.status_code}" + (f" ({labels})" if labels else "")
        if exc.status_code not in (401, 403):  # auth messages tend to quote the key
            detail = _error_message(exc.body)
            if detail:
                text += f": {self._redact(detail)}"
        return text + (f" after {attempts} attempts" if attempts > 1 else "")

    def _redact(self, text: str) -> str:
        text = text.replace(self._secret, "[redacted]")
        text = _KEYLIKE.sub("[redacted]", text)
        return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"

    def _deadline_error(self, timeout_s: float, attempts: int) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{self._name}: no answer within the {timeout_s:.3g} s deadline "
            f"({attempts} attempt{'s' if attempts != 1 else ''})"
        )


def grok_provider(
    api_key: str,
    base_url: str | None = None,
    model: str = GROK_DEFAULT_MODEL,
    *,
    max_retries: int = 4,
    backoff_base_s: float = 0.25,
    backoff_max_s: float = 8.0,
) -> OpenAIProvider:
    """xAI's Grok through its OpenAI-compatible endpoint (default ``https://api.x.ai/v1``)."""
    return OpenAIProvider(
        api_key=api_key,
        base_url=base_url or GROK_BASE_URL,
        model=model,
        name="grok",
        max_retries=max_retries,
        backoff_base_s=backoff_base_s,
        backoff_max_s=backoff_max_s,
    )


def _message(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=message.content)
    if message.role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
    return ChatCompletionUserMessageParam(role="user", content=message.content)


def _response_format(schema: Mapping[str, Any]) -> ResponseFormatJSONSchema:
    title = schema.get("title")
    name = _SCHEMA_NAME.sub("_", title)[:64] if isinstance(title, str) and title else "response"
    return ResponseFormatJSONSchema(
        type="json_schema",
        json_schema=JSONSchema(name=name, schema=dict(schema), strict=True),
    )


def _error_message(body: object) -> str:
    """The ``error.message`` of an OpenAI error body (the SDK hands over ``error`` or the whole)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            return message if isinstance(message, str) else ""
    return body if isinstance(body, str) else ""
