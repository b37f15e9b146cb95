"""SocialSettings: everything the social service reads from PUPPET_SOCIAL_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from puppet_runtime import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


class SocialSettings(ServiceSettings):
    """Settings of the social service."""

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_SOCIAL_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    port: int = Field(default=50054, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    network: Literal["sandbox", "x"] = "sandbox"
    """sandbox (local X-like network in data_dir/sandbox.sqlite3) or x (X API v2)."""
    x_base_url: str = "https://api.x.com"
    """Base URL of the X API."""
    data_dir: Path = Path("data/social")
    """Directory of the SQLite files (social.sqlite3, sandbox.sqlite3)."""
    store: Literal["sqlite", "mongo"] = "sqlite"
    """sqlite (embedded default) or mongo (production)."""
    mongo_uri: SecretStr | None = None
    """MongoDB connection string; required when store is mongo."""
    mongo_database: str = "puppet_social"
    """MongoDB database holding this service's collections."""
    default_tier: Literal["free", "basic", "pro", "unlimited"] = "free"
    """API access tier the rate planner assumes for every account."""
    outbox_interval_s: float = Field(default=1.0, gt=0)
    """Seconds between outbox passes that send due items."""
    mention_poll_interval_s: float = Field(default=60.0, gt=0)
    """Seconds between mention polls of one account."""
    x_api_key: SecretStr | None = None
    """Shared default X consumer key (legacy .env fallback for accounts without their own)."""
    x_api_key_secret: SecretStr | None = None
    """Shared default X consumer key secret."""
    x_access_token: SecretStr | None = None
    """Shared default X user access token."""
    x_access_token_secret: SecretStr | None = None
    """Shared default X user access token secret."""
    admin_token: SecretStr | None = None
    """Token admin calls carry as "authorization: Bearer <token>" (review, operator posts,
    credentials). Unset: admin calls are served only when host is a loopback address."""
    credentials_key: SecretStr | None = None
    """Fernet key (urlsafe base64 of 32 bytes) encrypting stored X credentials. Unset: a key
    file, data_dir/credentials.key, created with mode 0600 on first start."""

    @model_validator(mode="after")
    def _needs(self) -> SocialSettings:
        if self.store == "mongo" and self.mongo_uri is None:
            raise ValueError("PUPPET_SOCIAL_MONGO_URI is required when store is mongo")
        return self
