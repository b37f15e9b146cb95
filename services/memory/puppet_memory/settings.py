"""MemorySettings: everything the memory service reads from PUPPET_MEMORY_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from puppet_runtime import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


class MemorySettings(ServiceSettings):
    """Settings of the memory service."""

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_MEMORY_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    port: int = Field(default=50052, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    data_dir: Path = Path("data/memory")
    """Directory of the SQLite file (memory.sqlite3)."""
    store: Literal["sqlite", "mongo"] = "sqlite"
    """sqlite (embedded default) or mongo (production)."""
    mongo_uri: SecretStr | None = None
    """MongoDB connection string; required when store is mongo."""
    mongo_database: str = "puppet_memory"
    """MongoDB database holding this service's collections."""
    embedder: Literal["minilm", "openai"] = "minilm"
    """minilm (local all-MiniLM-L6-v2, no keys) or openai."""
    openai_api_key: SecretStr | None = None
    """API key for the openai embedder."""
    openai_base_url: str = "https://api.openai.com/v1"
    """Base URL of the OpenAI-compatible embeddings API."""
    openai_embedding_model: str = "text-embedding-3-small"
    """Embedding model name for the openai embedder."""
    default_memory_budget: int = Field(default=10_000, ge=1, le=1_000_000)
    """Memories kept per persona when the persona sets no budget of its own."""
    index_cache_vectors: int = Field(default=500_000, ge=1)
    """Vectors kept in RAM for recall across all personas (LRU); 384-d costs 1.5 KB each."""

    @model_validator(mode="after")
    def _needs(self) -> MemorySettings:
        if self.store == "mongo" and self.mongo_uri is None:
            raise ValueError("PUPPET_MEMORY_MONGO_URI is required when store is mongo")
        if self.embedder == "openai" and self.openai_api_key is None:
            raise ValueError("PUPPET_MEMORY_OPENAI_API_KEY is required when embedder is openai")
        return self
