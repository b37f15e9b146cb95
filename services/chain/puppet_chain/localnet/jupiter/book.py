"""The fixed-price book: USD prices per mint, and what the liquidity wallet can pay out."""

from __future__ import annotations

import threading
from decimal import ROUND_DOWN, Decimal

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address
from spl.token.constants import WRAPPED_SOL_MINT

from puppet_chain.localnet.jupiter.errors import JupiterError
from puppet_chain.localnet.solana_rpc import LocalSolana, RpcError

SOL_MINT = WRAPPED_SOL_MINT
"""Jupiter names native SOL by the wrapped-SOL mint."""

_SOL_DECIMALS = 9


class PriceBook:
    """Prices set by the operator; amounts convert at them with no fees and no price impact."""

    def __init__(self, solana: LocalSolana, liquidity: Keypair) -> None:
        self._solana = solana
        self._liquidity = liquidity
        self._prices: dict[Pubkey, Decimal] = {}
        self._lock = threading.Lock()

    def set_price(self, mint: str | Pubkey, usd: Decimal) -> None:
        """Set (or change) a tradable mint's USD price; creates the liquidity token account."""
        key = mint if isinstance(mint, Pubkey) else Pubkey.from_string(mint)
        price = Decimal(usd)
        if price <= 0:
            raise ValueError("a price must be positive")
        if key != SOL_MINT:
            self._solana.create_token_account(key, self._liquidity.pubkey())
        with self._lock:
            self._prices[key] = price

    def decimals(self, mint: Pubkey) -> int:
        """The mint's decimals (SOL's 9 for the wrapped-SOL mint)."""
        if mint == SOL_MINT:
            return _SOL_DECIMALS
        try:
            return self._solana.mint_decimals(mint)
        except RpcError:
            raise JupiterError(400, "TOKEN_NOT_TRADABLE", f"{mint} is not a token mint") from None

    def usd(self, mint: Pubkey) -> Decimal | None:
        """The mint's USD price, or None if it is not tradable."""
        with self._lock:
            return self._prices.get(mint)

    def price(self, mint: Pubkey) -> Decimal:
        """The mint's USD price; JupiterError TOKEN_NOT_TRADABLE if it has none."""
        price = self.usd(mint)
        if price is None:
            raise JupiterError(400, "TOKEN_NOT_TRADABLE", f"The token {mint} is not tradable")
        return price

    def out_amount(self, input_mint: Pubkey, output_mint: Pubkey, amount: int) -> int:
        """What amount of input_mint buys of output_mint, rounded down."""
        value = (
            Decimal(amount)
            * self.price(input_mint)
            / self.price(output_mint)
            * Decimal(10) ** (self.decimals(output_mint) - self.decimals(input_mint))
        )
        return int(value.to_integral_value(rounding=ROUND_DOWN))

    def available(self, mint: Pubkey) -> int:
        """What the liquidity wallet can pay out of mint (SOL keeps 0.01 for fees and rent)."""
        owner = self._liquidity.pubkey()
        if mint == SOL_MINT:
            return max(0, self._solana.balance(owner) - 10_000_000)  # keep fees and rent
        return self._solana.token_balance(get_associated_token_address(owner, mint))
