"""Settings every service shares; each service subclasses them with its own env prefix."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """Typed, frozen settings read once from the environment.

    Subclass per service with
    `model_config = SettingsConfigDict(env_prefix="PUPPET_<SVC>_", frozen=True, extra="ignore")`.
    """

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Address to bind; loopback unless told otherwise."""
    port: int = 50051
    """gRPC port; 0 picks a free one. Subclasses override the default."""
    shutdown_grace_s: float = Field(default=5.0, ge=0)
    """Seconds in-flight RPCs get to finish once the server stops."""
    drain_s: float = Field(default=1.0, ge=0)
    """Seconds health reports NOT_SERVING before the server stops, so balancers notice."""
    log_level: str = "INFO"
    """Root log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    log_format: Literal["json", "text"] = "json"
    """`json` lines for containers, `text` for a terminal."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Port for Prometheus `/metrics` on `host`; no metrics endpoint when unset."""
    request_timeout_s: float = Field(default=10.0, gt=0)
    """Default deadline, in seconds, for outgoing calls made through `open_channel`."""

    @field_validator("port")
    @classmethod
    def _valid_port(cls, value: int) -> int:
        # A validator, not Field(ge=, le=): it still applies when a subclass redeclares `port`.
        if not 0 <= value <= 65535:
            raise ValueError("must be between 0 and 65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping() or level == "NOTSET":
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level
