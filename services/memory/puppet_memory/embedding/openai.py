"""The hosted embedder: OpenAI's (or any compatible server's) /v1/embeddings via the openai SDK."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import openai
from openai import AsyncOpenAI
from openai.types import Embedding

from puppet_memory.embedding import Vectors

log = logging.getLogger(__name__)

# Statuses worth retrying later; every other 4xx means the request or its configuration is wrong.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_MAX_DETAIL = 300


class EmbeddingUnavailable(Exception):
    """The provider could not answer now (timeout, connection, 429 or 5xx after retries)."""


class EmbeddingRejected(Exception):
    """The provider refused the request as configured (bad key, model, dimension or input)."""


class OpenAIEmbedder:
    """Embeds text through the OpenAI embeddings API; vectors are L2-normalised float32.

    ``dimensions`` is sent only to text-embedding-3 models, the only ones that accept it. The SDK
    retries 408/409/429/5xx and timeouts ``max_retries`` times with backoff before an
    ``EmbeddingUnavailable`` is raised. Exceptions never carry the API key, nor chain to the SDK
    error (whose request and body could).
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        model: str = "text-embedding-3-small",
        dimension: int = 1536,
        timeout_s: float = 30.0,
        max_batch: int = 256,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        if dimension < 1 or max_batch < 1:
            raise ValueError("dimension and max_batch must be at least 1")
        self._model = model
        self._dimension = dimension
        self._max_batch = max_batch
        self._secret = api_key
        self._client = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )
        self._takes_dimensions = model.startswith("text-embedding-3")

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), self._max_batch):
            batch = texts[start : start + self._max_batch]
            out[start : start + len(batch)] = await self._embed_batch(batch)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, np.float32(1e-12))
        return out

    async def close(self) -> None:
        await self._client.close()

    async def _embed_batch(self, texts: Sequence[str]) -> Vectors:
        # The API refuses "" outright; a lone space embeds "nothing" just as well.
        inputs = [text or " " for text in texts]
        failure: Exception
        try:
            if self._takes_dimensions:
                response = await self._client.embeddings.create(
                    model=self._model,
                    input=inputs,
                    dimensions=self._dimension,
                    encoding_format="float",
                )
            else:
                response = await self._client.embeddings.create(
                    model=self._model, input=inputs, encoding_format="float"
                )
        except openai.APIError as err:
            failure = self._translate(err)
        else:
            return self._vectors(response.data, len(inputs))
        # Raised outside the except block so the SDK error is neither cause nor context.
        raise failure

    def _vectors(self, data: Sequence[Embedding], expected: int) -> Vectors:
        if sorted(item.index for item in data) != list(range(expected)):
            raise EmbeddingUnavailable(
                f"embeddings response from {self._model} has {len(data)} items for {expected} "
                "inputs"
            )
        vectors = np.empty((expected, self._dimension), dtype=np.float32)
        for item in data:
            if len(item.embedding) != self._dimension:
                raise EmbeddingRejected(
                    f"{self._model} returned {len(item.embedding)}-dimensional vectors, "
                    f"configured for {self._dimension}"
                )
            vectors[item.index] = item.embedding
        return vectors

    def _translate(self, err: openai.APIError) -> Exception:
        if isinstance(err, openai.APITimeoutError):
            return EmbeddingUnavailable(f"embeddings request to {self._model} timed out")
        if isinstance(err, openai.APIConnectionError):
            return EmbeddingUnavailable(f"cannot reach the embeddings endpoint for {self._model}")
        if not isinstance(err, openai.APIStatusError):
            return EmbeddingUnavailable(
                f"malformed embeddings response for {self._model}: {type(err).__name__}"
            )
        status, code = err.status_code, err.code or err.type or "error"
        if status in (401, 403):
            # The provider's message quotes (part of) the key, so it is not passed on at all.
            return EmbeddingRejected(f"embeddings API refused the credentials ({status} {code})")
        detail = self._redact(err.message)
        log.warning("embeddings request to %s failed: %s %s", self._model, status, code)
        transient = status >= 500 or status in _TRANSIENT_STATUSES
        kind = EmbeddingUnavailable if transient else EmbeddingRejected
        return kind(f"embeddings request to {self._model} failed ({status} {code}): {detail}")

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]")[:_MAX_DETAIL]
