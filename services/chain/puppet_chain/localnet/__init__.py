"""Local stand-ins for Solana and Jupiter: a LiteSVM JSON-RPC node and a Jupiter-shaped API."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from puppet_chain.localnet.jupiter import SOL_MINT, JupiterError, LocalJupiter
from puppet_chain.localnet.solana_rpc import FailureKind, LocalSolana, RpcError

__all__ = [
    "SOL_MINT",
    "Embedded",
    "FailureKind",
    "JupiterError",
    "LocalJupiter",
    "LocalSolana",
    "RpcError",
    "embedded",
]

SOL = 1_000_000_000


@dataclass(frozen=True)
class Embedded:
    """A started LocalSolana and LocalJupiter with a funded liquidity wallet and a USDC mint."""

    solana: LocalSolana
    jupiter: LocalJupiter
    liquidity: Keypair
    usdc_mint: Pubkey
    mints: dict[str, Pubkey] = field(default_factory=dict)
    """Symbol to mint: {"SOL": the wrapped-SOL mint, "USDC": the demo stable mint}."""

    @property
    def rpc_url(self) -> str:
        """The Solana JSON-RPC endpoint."""
        return self.solana.url

    @property
    def jupiter_url(self) -> str:
        """The Jupiter base URL (append /swap/v1/quote, /swap/v1/swap, /price/v3)."""
        return self.jupiter.url

    def stop(self) -> None:
        """Stop both servers."""
        self.jupiter.stop()
        self.solana.stop()

    def __enter__(self) -> Embedded:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def embedded(
    *,
    sol_usd: Decimal = Decimal("150"),
    usdc_usd: Decimal = Decimal("1"),
    liquidity_lamports: int = 1_000_000 * SOL,
    liquidity_usdc: int = 100_000_000 * 10**6,
    api_key: str | None = None,
) -> Embedded:
    """Start a LocalSolana and a LocalJupiter: a liquidity wallet funded with SOL and a demo
    "USDC" mint (6 decimals), both tradable at the given USD prices. Stop it with `.stop()` or use
    it as a context manager."""
    solana = LocalSolana()
    solana.start()
    try:
        liquidity = Keypair()
        solana.airdrop(liquidity.pubkey(), liquidity_lamports)
        usdc = solana.create_mint(Keypair(), 6)
        solana.mint_to(usdc, liquidity.pubkey(), liquidity_usdc)
        jupiter = LocalJupiter(
            solana, liquidity, {str(SOL_MINT): sol_usd, str(usdc): usdc_usd}, api_key=api_key
        )
        jupiter.start()
    except BaseException:
        solana.stop()
        raise
    return Embedded(solana, jupiter, liquidity, usdc, {"SOL": SOL_MINT, "USDC": usdc})
