"""The provider port: chat messages in, one generation out, with token counts and timing."""

# The error names read as outcomes (ProviderRejected), as in puppet_runtime.errors.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat prompt, exactly as sent to the model."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """How to generate: limits and sampling, and an optional JSON schema for structured output."""

    max_tokens: int
    temperature: float = 0.8
    stop: tuple[str, ...] = ()
    json_schema: Mapping[str, Any] | None = None
    """When set, the text must be one JSON object valid against this schema."""
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """What the provider returned, with the accounting the service bills and exports."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    provider_ms: float
    attempts: int = 1
    extra: Mapping[str, str] = field(default_factory=dict)


class ProviderError(Exception):
    """Base of every provider failure; messages never contain keys or prompts."""


class ProviderUnavailable(ProviderError):
    """Timeouts, connection errors and 5xx, after the retries ran out."""


class ProviderRateLimited(ProviderError):
    """429 after the retries ran out; ``retry_after_s`` is the provider's hint, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderRejected(ProviderError):
    """The provider refused the request itself (400, 401, 403, 404): retrying will not help."""


class Provider(Protocol):
    """A text generator: OpenAI, Grok (OpenAI-compatible), the local model, or a fake."""

    @property
    def name(self) -> str:
        """Short provider name used in metrics and budgets: openai, grok, local, fake."""
        ...

    @property
    def model(self) -> str:
        """The model identifier requests go to."""
        ...

    async def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, timeout_s: float
    ) -> Generation:
        """Generate one completion within ``timeout_s`` (all retries included)."""
        ...

    async def close(self) -> None:
        """Release HTTP clients, threads and model memory."""
        ...
