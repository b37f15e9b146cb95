"""ChainSettings: everything the chain service reads from PUPPET_CHAIN_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from puppet_runtime import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


class ChainSettings(ServiceSettings):
    """Settings of the chain service."""

    model_config = SettingsConfigDict(
        env_prefix="PUPPET_CHAIN_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    port: int = Field(default=50055, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    data_dir: Path = Path("data/chain")
    """Directory of the SQLite file and the embedded keystore key file."""
    store: Literal["sqlite", "mongo"] = "sqlite"
    """sqlite (embedded default) or mongo (production)."""
    mongo_uri: SecretStr | None = None
    """MongoDB connection string; required when store is mongo."""
    mongo_database: str = "puppet_chain"
    """MongoDB database holding this service's collections."""
    rpc_url: str | None = None
    """Solana JSON-RPC URL; unset starts the local Solana (LiteSVM) in-process."""
    cluster: Literal["localnet", "devnet", "mainnet-beta"] = "localnet"
    """Cluster the RPC serves (reported on wallets; mainnet-beta refuses airdrops)."""
    jupiter_url: str = "https://lite-api.jup.ag"
    """Base URL of the Jupiter Swap API v1 and Price API v3 (ignored when rpc_url is unset)."""
    jupiter_api_key: SecretStr | None = None
    """Jupiter API key (x-api-key header), for api.jup.ag."""
    keystore_key: SecretStr | None = None
    """32-byte AES-GCM key (hex or base64) sealing wallet keys at rest; unset uses a 0600 key
    file in data_dir."""
    admin_token: SecretStr | None = None
    """Bearer token ImportWallet, UpdatePolicy, ApproveAction and RejectAction require; unset
    allows them (embedded default only)."""
    rpc_timeout_s: float = Field(default=5.0, gt=0)
    """Deadline of one RPC or Jupiter request."""
    confirm_timeout_s: float = Field(default=20.0, gt=0)
    """Longest wait for a confirmation before an action is returned SUBMITTED."""
    approval_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long an action waits for approval before it lapses (REJECTED)."""
    trading_enabled_by_default: bool = False
    """Default policy master switch for wallets whose policy was never set."""
    local_usdc_price: float = Field(default=1.0, gt=0)
    """Local Jupiter: USD price of the demo USDC mint."""
    local_sol_price: float = Field(default=150.0, gt=0)
    """Local Jupiter: USD price of SOL."""

    @model_validator(mode="after")
    def _needs(self) -> ChainSettings:
        if self.store == "mongo" and self.mongo_uri is None:
            raise ValueError("PUPPET_CHAIN_MONGO_URI is required when store is mongo")
        if self.store == "mongo" and self.keystore_key is None:
            # Replicas share the sealed keys in MongoDB, so they must share the key that opens them.
            raise ValueError("PUPPET_CHAIN_KEYSTORE_KEY is required when store is mongo")
        return self
