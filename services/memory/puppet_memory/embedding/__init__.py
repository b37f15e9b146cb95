"""The embedder port: text in, unit-length float32 vectors out, tagged with model and dimension."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one model and one dimension."""

    @property
    def model(self) -> str:
        """Identifier stored beside every vector (``sentence-transformers/all-MiniLM-L6-v2``)."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in order; returns shape ``(len(texts), dimension)``, rows of norm 1."""
        ...

    async def close(self) -> None:
        """Release threads, sessions and files."""
        ...
