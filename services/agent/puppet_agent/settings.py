"""AgentSettings: everything the agent service reads from PUPPET_AGENT_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from puppet_runtime import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

ProviderChoice = Literal["persona", "default", "openai", "grok", "local", "fake"]


class AgentSettings(ServiceSettings):
    """Settings of the agent service (the orchestrator and public API)."""

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_AGENT_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    port: int = Field(default=50051, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    memory_addr: str
    """host:port of MemoryService (required)."""
    llm_addr: str
    """host:port of LlmService (required)."""
    social_addr: str
    """host:port of SocialService (required)."""
    chain_addr: str | None = None
    """host:port of ChainService; unset means no persona trades."""
    chain_admin_token: SecretStr | None = None
    """Chain's admin token, sent with ImportWallet and UpdatePolicy at wallet setup."""
    agents_dir: Path | None = Path("config/agents")
    """Directory of persona files loaded at start (legacy JSON); unset loads none."""
    data_dir: Path = Path("data/agent")
    """Directory of the SQLite file (agent.sqlite3)."""
    store: Literal["sqlite", "mongo"] = "sqlite"
    """sqlite (embedded default) or mongo (production)."""
    mongo_uri: SecretStr | None = None
    """MongoDB connection string; required when store is mongo."""
    mongo_database: str = "puppet_agent"
    """MongoDB database holding this service's collections."""
    llm_provider: ProviderChoice = "persona"
    """persona (each file's llm_provider), default (the llm service's default for everyone), or
    one provider forced for every persona."""
    social_network: Literal["sandbox", "x"] = "sandbox"
    """Network of the accounts registered for personas (account id = persona id)."""
    admin_token: SecretStr | None = None
    """Token required by /api/v2 writes ("authorization: Bearer <token>"); unset: no check."""
    timezone: str = "UTC"
    """Time zone of peak_posting_hours."""
    run_lives: bool = True
    """Run personas' lives (schedule, mentions, events); false serves the API only."""
    tick_s: float = Field(default=30.0, gt=0)
    """How often the runner checks schedules and due events, in seconds."""
    schedule_scale: float = Field(default=1.0, gt=0, le=1)
    """Demo setting: every persona's post gaps (min/max hours, jitter, the "too soon" threshold)
    are multiplied by this; `dev.py up` uses 1/360 (a 2-6 h rhythm becomes 20-60 s)."""
    min_post_gap_s: float = Field(default=0.0, ge=0)
    """Demo setting: a scheduled gap after a post is never shorter than this, in seconds (a
    persona's first post is not held back by it)."""
    first_post_delay_s: float = Field(default=10.0, ge=0)
    """Delay before a persona's first scheduled post is planned (legacy: 10 s)."""
    mood_event_interval_s: float = Field(default=4 * 3600.0, ge=0)
    """Each running persona gets a random mood_shift event this often (legacy 4 h); 0 = never."""
    news_event_interval_s: float = Field(default=6 * 3600.0, ge=0)
    """Each running persona gets a random news event this often (legacy 6 h); 0 = never."""
    interaction_event_interval_s: float = Field(default=8 * 3600.0, ge=0)
    """Each running persona is prompted to engage another persona this often (legacy 8 h)."""
    trade_check_interval_s: float = Field(default=600.0, gt=0)
    """How often a trading persona considers a trade (legacy 10 min); needs chain_addr."""
    mood_half_life_s: float = Field(default=6 * 3600.0, gt=0)
    """Mood decays toward the persona's baseline with this half-life."""
    mood_decay_interval_s: float = Field(default=600.0, gt=0)
    """How often a running persona's mood is decayed, in seconds."""
    replica_id: str = ""
    """This replica's name in the persona leases; empty means host-pid."""
    lease_ttl_s: float = Field(default=30.0, gt=0)
    """Persona lease lifetime: a dead replica's personas move within about this long."""
    random_seed: int | None = None
    """Seed of the lives' randomness (schedules, reactions); unset means random."""
    recall_top_k: int = Field(default=8, ge=0, le=20)
    """Memories recalled into each composition."""
    state_cache_s: float = Field(default=1.0, ge=0, le=60)
    """How long a persona's state read from memory is reused (this replica's own writes
    replace it at once): another writer's change shows at most this late. 0 turns it off."""

    @model_validator(mode="after")
    def _needs(self) -> AgentSettings:
        if self.store == "mongo" and self.mongo_uri is None:
            raise ValueError("PUPPET_AGENT_MONGO_URI is required when store is mongo")
        return self
