"""A fake of Jupiter's HTTP API (Swap API v1 and Price API v3) that fills at fixed prices."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID, WRAPPED_SOL_MINT
from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
from spl.token.models import TransferCheckedParams

from puppet_chain.localnet._http import FailureKind, LocalHttpServer, Request, Response
from puppet_chain.localnet.solana_rpc import LocalSolana, RpcError

__all__ = ["SOL_MINT", "JupiterError", "LocalJupiter"]

SOL_MINT = WRAPPED_SOL_MINT
"""Jupiter names native SOL by the wrapped-SOL mint."""

_SOL_DECIMALS = 9
_LABEL = "Local Fixed Price"


class JupiterError(Exception):
    """An error answered the way Jupiter does: {"error": message, "errorCode": code}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        """The HTTP response for this error."""
        body = json.dumps({"error": self.message, "errorCode": self.code}).encode()
        return Response(self.status, body)


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, separators=(",", ":")).encode())


def _mint(value: str | None, field: str) -> Pubkey:
    if not value:
        raise JupiterError(400, "INVALID_REQUEST", f"Query parameter {field} is required")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} is not a valid public key") from None


def _uint(value: Any, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} must be an integer") from None
    if number < 0:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} must not be negative")
    return number


class LocalJupiter:
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
        self._prices: dict[Pubkey, Decimal] = {}
        self._api_key = api_key
        self._lock = threading.Lock()
        self._http = LocalHttpServer(self._serve, name="local-jupiter", stall_s=stall_s)
        for mint, usd in prices.items():
            self.set_price(mint, usd)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on 127.0.0.1 on a free port; returns the base URL (no path)."""
        return self._http.start()

    def stop(self) -> None:
        """Stop serving."""
        self._http.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321 (append /swap/v1/quote etc.)."""
        return self._http.url

    @property
    def liquidity(self) -> Pubkey:
        """The wallet on the other side of every swap."""
        return self._liquidity.pubkey()

    def __enter__(self) -> LocalJupiter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(self, n: int = 1, kind: FailureKind = "http500") -> None:
        """Make the next `n` HTTP requests fail: `http500` answers 500, `timeout` never answers
        (the connection is held for `stall_s` seconds or until `stop()`, then closed)."""
        self._http.fail_next(n, kind)

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

    # ------------------------------------------------------------------ pricing

    def _decimals(self, mint: Pubkey) -> int:
        if mint == SOL_MINT:
            return _SOL_DECIMALS
        try:
            return self._solana.mint_decimals(mint)
        except RpcError:
            raise JupiterError(400, "TOKEN_NOT_TRADABLE", f"{mint} is not a token mint") from None

    def _price(self, mint: Pubkey) -> Decimal:
        with self._lock:
            price = self._prices.get(mint)
        if price is None:
            raise JupiterError(400, "TOKEN_NOT_TRADABLE", f"The token {mint} is not tradable")
        return price

    def _out_amount(self, input_mint: Pubkey, output_mint: Pubkey, amount: int) -> int:
        value = (
            Decimal(amount)
            * self._price(input_mint)
            / self._price(output_mint)
            * Decimal(10) ** (self._decimals(output_mint) - self._decimals(input_mint))
        )
        return int(value.to_integral_value(rounding=ROUND_DOWN))

    def _available(self, mint: Pubkey) -> int:
        owner = self._liquidity.pubkey()
        if mint == SOL_MINT:
            return max(0, self._solana.balance(owner) - 10_000_000)  # keep fees and rent
        return self._solana.token_balance(get_associated_token_address(owner, mint))

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
        input_mint = _mint(query.get("inputMint"), "inputMint")
        output_mint = _mint(query.get("outputMint"), "outputMint")
        if "amount" not in query:
            raise JupiterError(400, "INVALID_REQUEST", "Query parameter amount is required")
        amount = _uint(query["amount"], "amount")
        slippage = _uint(query.get("slippageBps", 50), "slippageBps")
        if slippage > 10_000:
            raise JupiterError(400, "INVALID_REQUEST", "slippageBps must be at most 10000")
        mode = query.get("swapMode", "ExactIn")
        if mode != "ExactIn":
            raise JupiterError(400, "INVALID_REQUEST", f"swapMode {mode} is not supported here")
        if input_mint == output_mint:
            raise JupiterError(
                400, "CIRCULAR_ARBITRAGE_IS_DISABLED", "inputMint and outputMint are the same"
            )
        out_amount = self._out_amount(input_mint, output_mint, amount)
        if amount == 0 or out_amount == 0 or out_amount > self._available(output_mint):
            raise JupiterError(400, "COULD_NOT_FIND_ANY_ROUTE", "Could not find any route")
        threshold = out_amount * (10_000 - slippage) // 10_000
        usd = Decimal(amount) * self._price(input_mint) / Decimal(10) ** self._decimals(input_mint)
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
        user = _mint(user_key, "userPublicKey")
        input_mint = _mint(quote.get("inputMint"), "inputMint")
        output_mint = _mint(quote.get("outputMint"), "outputMint")
        try:
            amount = _uint(quote["inAmount"], "inAmount")
            threshold = _uint(quote["otherAmountThreshold"], "otherAmountThreshold")
        except KeyError as exc:
            raise JupiterError(400, "INVALID_REQUEST", f"quoteResponse.{exc} is required") from None
        out_amount = self._out_amount(input_mint, output_mint, amount)
        if out_amount < threshold:
            raise JupiterError(
                400,
                "SLIPPAGE_TOLERANCE_EXCEEDED",
                f"The price moved: {out_amount} is below otherAmountThreshold {threshold}",
            )
        if out_amount > self._available(output_mint):
            raise JupiterError(400, "COULD_NOT_FIND_ANY_ROUTE", "Could not find any route")
        liquidity = self._liquidity.pubkey()
        ixs = [
            *self._leg(input_mint, amount, source=user, dest=liquidity, payer=user),
            *self._leg(output_mint, out_amount, source=liquidity, dest=user, payer=user),
        ]
        blockhash, last_valid = self._solana.latest_blockhash()
        message = MessageV0.try_compile(user, ixs, [], blockhash)
        signers = message.account_keys[: message.header.num_required_signatures]
        own = self._liquidity.sign_message(to_bytes_versioned(message))
        signatures = [own if key == liquidity else Signature.default() for key in signers]
        tx = VersionedTransaction.populate(message, signatures)
        return {
            "swapTransaction": base64.b64encode(bytes(tx)).decode(),
            "lastValidBlockHeight": last_valid,
            "prioritizationFeeLamports": 0,
            "computeUnitLimit": 200_000,
            "prioritizationType": {"computeBudget": {"microLamports": 0}},
            "dynamicSlippageReport": None,
            "simulationError": None,
        }

    def _leg(
        self, mint: Pubkey, amount: int, *, source: Pubkey, dest: Pubkey, payer: Pubkey
    ) -> list[Instruction]:
        if mint == SOL_MINT:
            params = TransferParams(from_pubkey=source, to_pubkey=dest, lamports=amount)
            return [transfer(params)]
        checked = TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(source, mint),
            mint=mint,
            dest=get_associated_token_address(dest, mint),
            owner=source,
            amount=amount,
            decimals=self._decimals(mint),
        )
        create = create_idempotent_associated_token_account(payer, dest, mint)
        return [create, transfer_checked(checked)]

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
            with self._lock:
                usd = self._prices.get(mint)
            if usd is None:
                continue
            try:
                usd_price = float(usd)
            except (InvalidOperation, OverflowError):
                continue
            prices[item] = {
                "createdAt": created,
                "liquidity": float(self._available(mint)) / 10 ** self._decimals(mint) * usd_price,
                "usdPrice": usd_price,
                "blockId": self._solana.slot,
                "decimals": self._decimals(mint),
                "priceChange24h": 0.0,
            }
        return prices
