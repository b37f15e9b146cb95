"""LocalJupiter: a fake of Jupiter's HTTP API (Swap API v1, Price API v3) at fixed prices."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from puppet_runtime.local_http import LocalHttpApp, Request, Response
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from puppet_chain.localnet.jupiter.book import PriceBook
from puppet_chain.localnet.jupiter.errors import JupiterError, parse_mint, parse_uint
from puppet_chain.localnet.jupiter.swap_tx import swap_transaction
from puppet_chain.localnet.solana_rpc import LocalSolana

_LABEL = "Local Fixed Price"


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, separators=(",", ":")).encode())


class LocalJupiter(LocalHttpApp):
    """A fake of the Jupiter HTTP API with no AMM, for tests and the embedded mode.

    Quotes fill at the configured USD prices (no fees, no price impact, no routing), and
    `/swap/v1/swap` returns a real v0 transaction that moves the input from the user to the
    liquidity wallet and the output from the liquidity wallet to the user, already signed by the
    liquidity wallet; the user (the fee payer) signs and sends it to the LocalSolana. Unlike a
    real swap the transaction carries two signatures, so its fee is 10,000 lamports. Native SOL
    is always native (wrapAndUnwrapSol is accepted and ignored). Endpoints:
    GET /swap/v1/quote, POST /swap/v1/swap, GET /price/v3?ids=.
    """

    def __init__(
        self,
        solana: LocalSolana,
        liquidity: Keypair,
        prices: Mapping[str, Decimal],
        *,
        api_key: str | None = None,
        stall_s: float = 30.0,
    ) -> None:
        self._solana = solana
        self._liquidity = liquidity
        self._book = PriceBook(solana, liquidity)
        self._api_key = api_key
        super().__init__(name="local-jupiter", stall_s=stall_s)
        for mint, usd in prices.items():
            self.set_price(mint, usd)

    @property
    def liquidity(self) -> Pubkey:
        """The wallet on the other side of every swap."""
        return self._liquidity.pubkey()

    def set_price(self, mint: str | Pubkey, usd: Decimal) -> None:
        """Set (or change) a tradable mint's USD price; creates the liquidity token account."""
        self._book.set_price(mint, usd)

    # ------------------------------------------------------------------ HTTP

    def _serve(self, request: Request) -> Response | None:
        try:
            if self._api_key is not None and request.headers.get("x-api-key") != self._api_key:
                raise JupiterError(401, "UNAUTHORIZED", "Invalid or missing API key")
            parts = urlsplit(request.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            route = (request.method, parts.path.rstrip("/"))
            if route == ("GET", "/swap/v1/quote"):
                return _json(self.quote(query))
            if route == ("POST", "/swap/v1/swap"):
                try:
                    body = json.loads(request.body or b"null")
                except ValueError:
                    raise JupiterError(400, "INVALID_REQUEST", "Body is not JSON") from None
                return _json(self.swap(body))
            if route == ("GET", "/price/v3"):
                return _json(self.price(query))
            raise JupiterError(404, "NOT_FOUND", f"No route for {request.method} {parts.path}")
        except JupiterError as exc:
            return exc.response()

    def quote(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The body of GET /swap/v1/quote for these query parameters."""
        started = time.perf_counter()
        input_mint = parse_mint(query.get("inputMint"), "inputMint")
        output_mint = parse_mint(query.get("outputMint"), "outputMint")
        if "amount" not in query:
            raise JupiterError(400, "INVALID_REQUEST", "Query parameter amount is required")
        amount = parse_uint(query["amount"], "amount")
        slippage = parse_uint(query.get("slippageBps", 50), "slippageBps")
        if slippage > 10_000:
            raise JupiterError(400, "INVALID_REQUEST", "slippageBps must be at most 10000")
        mode = query.get("swapMode", "ExactIn")
        if mode != "ExactIn":
            raise JupiterError(400, "INVALID_REQUEST", f"swapMode {mode} is not supported here")
        if input_mint == output_mint:
            raise JupiterError(
                400, "CIRCULAR_ARBITRAGE_IS_DISABLED", "inputMint and outputMint are the same"
            )
        out_amount = self._book.out_amount(input_mint, output_mint, amount)
        if amount == 0 or out_amount == 0 or out_amount > self._book.available(output_mint):
            raise JupiterError(400, "COULD_NOT_FIND_ANY_ROUTE", "Could not find any route")
        threshold = out_amount * (10_000 - slippage) // 10_000
        usd = (
            Decimal(amount)
            * self._book.price(input_mint)
            / Decimal(10) ** self._book.decimals(input_mint)
        )
        return {
            "inputMint": str(input_mint),
            "inAmount": str(amount),
            "outputMint": str(output_mint),
            "outAmount": str(out_amount),
            "otherAmountThreshold": str(threshold),
            "swapMode": "ExactIn",
            "slippageBps": slippage,
            "platformFee": None,
            "priceImpactPct": "0",
            "routePlan": [
                {
                    "swapInfo": {
                        "ammKey": str(self._liquidity.pubkey()),
                        "label": _LABEL,
                        "inputMint": str(input_mint),
                        "outputMint": str(output_mint),
                        "inAmount": str(amount),
                        "outAmount": str(out_amount),
                        "feeAmount": "0",
                        "feeMint": str(input_mint),
                    },
                    "percent": 100,
                    "bps": 10_000,
                }
            ],
            "contextSlot": self._solana.slot,
            "timeTaken": time.perf_counter() - started,
            "swapUsdValue": str(usd.quantize(Decimal("0.000001"))),
        }

    def swap(self, body: Any) -> dict[str, Any]:
        """The body of POST /swap/v1/swap for this request body."""
        if not isinstance(body, dict) or not isinstance(body.get("quoteResponse"), dict):
            raise JupiterError(400, "INVALID_REQUEST", "quoteResponse is required")
        quote = body["quoteResponse"]
        user_key = body.get("userPublicKey")
        if not isinstance(user_key, str):
            raise JupiterError(400, "INVALID_REQUEST", "userPublicKey is required")
        user = parse_mint(user_key, "userPublicKey")
        input_mint = parse_mint(quote.get("inputMint"), "inputMint")
        output_mint = parse_mint(quote.get("outputMint"), "outputMint")
        try:
            amount = parse_uint(quote["inAmount"], "inAmount")
            threshold = parse_uint(quote["otherAmountThreshold"], "otherAmountThreshold")
        except KeyError as exc:
            raise JupiterError(400, "INVALID_REQUEST", f"quoteResponse.{exc} is required") from None
        out_amount = self._book.out_amount(input_mint, output_mint, amount)
        if out_amount < threshold:
            raise JupiterError(
                400,
                "SLIPPAGE_TOLERANCE_EXCEEDED",
                f"The price moved: {out_amount} is below otherAmountThreshold {threshold}",
            )
        if out_amount > self._book.available(output_mint):
            raise JupiterError(400, "COULD_NOT_FIND_ANY_ROUTE", "Could not find any route")
        tx, last_valid = swap_transaction(
            self._book,
            self._solana,
            self._liquidity,
            user,
            ((input_mint, amount), (output_mint, out_amount)),
        )
        return {
            "swapTransaction": base64.b64encode(bytes(tx)).decode(),
            "lastValidBlockHeight": last_valid,
            "prioritizationFeeLamports": 0,
            "computeUnitLimit": 200_000,
            "prioritizationType": {"computeBudget": {"microLamports": 0}},
            "dynamicSlippageReport": None,
            "simulationError": None,
        }

    def price(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The body of GET /price/v3 for these query parameters (unknown mints are omitted)."""
        ids = [item for item in query.get("ids", "").split(",") if item]
        if not ids:
            raise JupiterError(400, "INVALID_REQUEST", "Query parameter ids is required")
        if len(ids) > 50:
            raise JupiterError(400, "INVALID_REQUEST", "At most 50 ids per request")
        created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        prices: dict[str, Any] = {}
        for item in ids:
            try:
                mint = Pubkey.from_string(item)
            except ValueError:
                raise JupiterError(400, "INVALID_REQUEST", f"{item} is not a valid mint") from None
            usd = self._book.usd(mint)
            if usd is None:
                continue
            try:
                usd_price = float(usd)
            except (InvalidOperation, OverflowError):
                continue
            prices[item] = {
                "createdAt": created,
                "liquidity": float(self._book.available(mint))
                / 10 ** self._book.decimals(mint)
                * usd_price,
                "usdPrice": usd_price,
                "blockId": self._solana.slot,
                "decimals": self._book.decimals(mint),
                "priceChange24h": 0.0,
            }
        return prices
