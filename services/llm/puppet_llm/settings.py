"""LlmSettings: everything the llm service reads from PUPPET_LLM_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from puppet_runtime import ServiceSettings
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

ProviderName = Literal["local", "openai", "grok", "fake"]


class ModelPrice(BaseModel):
    """US dollars per one million tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_1m: float = Field(ge=0)
    """Prompt tokens."""
    output_per_1m: float = Field(ge=0)
    """Completion tokens."""


DEFAULT_PRICES = {
    "gpt-4o-mini": ModelPrice(input_per_1m=0.15, output_per_1m=0.60),
    "gpt-4o": ModelPrice(input_per_1m=2.50, output_per_1m=10.00),
    "gpt-4.1-mini": ModelPrice(input_per_1m=0.40, output_per_1m=1.60),
    "grok-3-mini": ModelPrice(input_per_1m=0.30, output_per_1m=0.50),
    "grok-3": ModelPrice(input_per_1m=3.00, output_per_1m=15.00),
}


class LlmSettings(ServiceSettings):
    """Settings of the llm service."""

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_LLM_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    port: int = Field(default=50053, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    default_provider: ProviderName | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "default_provider", "PUPPET_LLM_DEFAULT_PROVIDER", "PUPPET_LLM_PROVIDER"
        ),
    )
    """Provider for personas that name none (PUPPET_LLM_DEFAULT_PROVIDER, or PUPPET_LLM_PROVIDER):
    local (SmolLM2, no key), openai, grok, or fake (tests and benchmarks only). Unset means openai
    when its key is set, else grok when its key is set, else local."""
    allow_fake: bool = False
    """Accept PROVIDER_FAKE from personas (always true when the default provider is fake)."""
    openai_api_key: SecretStr | None = None
    """OpenAI API key; without it PROVIDER_OPENAI answers PROVIDER_NOT_CONFIGURED."""
    openai_base_url: str | None = None
    """OpenAI-compatible base URL; unset means api.openai.com."""
    openai_model: str = "gpt-4o-mini"
    """Model for OpenAI personas that name none."""
    grok_api_key: SecretStr | None = None
    """xAI API key; without it PROVIDER_GROK answers PROVIDER_NOT_CONFIGURED."""
    grok_base_url: str | None = None
    """xAI base URL; unset means https://api.x.ai/v1."""
    grok_model: str = "grok-3-mini"
    """Model for Grok personas that name none."""
    local_threads: int = Field(default=0, ge=0, le=64)
    """Decoding threads for the local model; 0 means all usable CPUs but one."""
    local_context_tokens: int = Field(default=8192, ge=512, le=8192)
    """The local model's context window (prompt + reply); SmolLM2 was trained on 8,192 tokens.
    A persona's prompt with its memories and the thread can pass 2,048."""
    local_model: str = "SmolLM2-135M-Instruct"
    """Name the local model is reported and billed under."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Overrides every task's default temperature (personas' output rules still win)."""
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    """Overrides every task's default completion limit (personas' output rules still win)."""
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """Per-model prices as JSON, e.g. {"gpt-4o-mini": {"input_per_1m": 0.15,
    "output_per_1m": 0.6}}; unknown models cost 0 (logged)."""
    default_daily_token_limit: int = Field(default=0, ge=0)
    """Tokens per persona per UTC day when the persona has no stored budget; 0 = unlimited."""
    default_daily_cost_limit_usd: float = Field(default=1.0, ge=0)
    """Dollars per persona per UTC day when the persona has no stored budget; 0 = unlimited."""
    budget_cache_s: float = Field(default=1.0, ge=0)
    """Seconds a replica trusts its cached limits and today's spending before re-reading the
    store (other replicas' spending shows up within this time; its own counts at once)."""
    data_dir: Path = Path("data/llm")
    """Directory of the SQLite file (llm.sqlite3)."""
    store: Literal["sqlite", "mongo"] = "sqlite"
    """sqlite (embedded default) or mongo (production)."""
    mongo_uri: SecretStr | None = None
    """MongoDB connection string; required when store is mongo."""
    mongo_database: str = "puppet_llm"
    """MongoDB database holding this service's collections."""
    near_duplicate_threshold: float = Field(default=0.6, gt=0, le=1)
    """Jaccard similarity of word-bigram shingles at or above which a text repeats a recent
    post."""
    max_regenerations: int = Field(default=2, ge=0, le=5)
    """Regenerations per call when the persona's output rules set none."""
    call_timeout_s: float = Field(default=30.0, gt=0)
    """Deadline of one provider call, retries included (shortened to the caller's deadline)."""
    random_seed: int | None = None
    """Seed for rotating-prompt picks and probabilities (tests); unset means random."""

    @model_validator(mode="after")
    def _needs(self) -> LlmSettings:
        if self.store == "mongo" and self.mongo_uri is None:
            raise ValueError("PUPPET_LLM_MONGO_URI is required when store is mongo")
        if self.default_provider == "openai" and self.openai_api_key is None:
            raise ValueError("PUPPET_LLM_OPENAI_API_KEY is required when provider is openai")
        if self.default_provider == "grok" and self.grok_api_key is None:
            raise ValueError("PUPPET_LLM_GROK_API_KEY is required when provider is grok")
        return self

    @property
    def provider(self) -> ProviderName:
        """The default provider after applying the key-based fallback."""
        if self.default_provider is not None:
            return self.default_provider
        if self.openai_api_key is not None:
            return "openai"
        return "grok" if self.grok_api_key is not None else "local"

    @property
    def fake_allowed(self) -> bool:
        """Whether PROVIDER_FAKE may answer."""
        return self.allow_fake or self.provider == "fake"
