"""An httpx client of Jupiter's Swap API v1 (quote, swap) and Price API v3."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from puppet_chain import errors

log = logging.getLogger(__name__)
QUOTE_TTL_S = 30.0
_NO_ROUTE = {"COULD_NOT_FIND_ANY_ROUTE", "NO_ROUTES_FOUND", "TOKEN_NOT_TRADABLE"}


@dataclass(frozen=True, slots=True)
class Quote:
    input_mint: str
    output_mint: str
    in_amount: int
    out_amount: int
    min_out_amount: int
    slippage_bps: int
    price_impact: float
    route: str
    expire_time: float
    raw: dict[str, Any]
    """The QuoteResponse as Jupiter sent it; POST /swap wants it back unchanged."""


class Jupiter:
    """Quotes, swap transactions and USD prices from Jupiter (or the local Jupiter)."""

    def __init__(
        self, base_url: str, *, api_key: SecretStr | None = None, timeout_s: float = 5.0
    ) -> None:
        headers = {"x-api-key": api_key.get_secret_value()} if api_key is not None else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("jupiter %s failed: %s", path, type(exc).__name__)
            raise errors.jupiter_unavailable(f"{path}: {type(exc).__name__}") from None

    async def quote(self, input_mint: str, output_mint: str, amount: int, slippage: int) -> Quote:
        params = {
            "inputMint": input_mint,
            "outputMint": output_mint,
            "amount": str(amount),
            "slippageBps": str(slippage),
            "swapMode": "ExactIn",
        }
        resp = await self._request("GET", "/swap/v1/quote", params=params)
        if resp.status_code == 400 and _code(resp) in _NO_ROUTE:
            raise errors.no_route(input_mint, output_mint)
        body = _ok(resp, "/swap/v1/quote")
        labels = [
            str(leg.get("swapInfo", {}).get("label", "")) for leg in body.get("routePlan", [])
        ]
        try:
            return Quote(
                input_mint=str(body["inputMint"]),
                output_mint=str(body["outputMint"]),
                in_amount=int(body["inAmount"]),
                out_amount=int(body["outAmount"]),
                min_out_amount=int(body["otherAmountThreshold"]),
                slippage_bps=int(body["slippageBps"]),
                price_impact=float(body.get("priceImpactPct") or 0),
                route=" > ".join(label for label in labels if label),
                expire_time=time.time() + QUOTE_TTL_S,
                raw=body,
            )
        except (KeyError, TypeError, ValueError):
            raise errors.jupiter_unavailable("/swap/v1/quote: unexpected response") from None

    async def swap_tx(self, quote: Quote, user: Keypair) -> tuple[VersionedTransaction, int]:
        """The swap transaction with the user's slot signed, and its last valid block height."""
        payload = {
            "quoteResponse": quote.raw,
            "userPublicKey": str(user.pubkey()),
            "wrapAndUnwrapSol": True,
            "dynamicComputeUnitLimit": True,
        }
        resp = await self._request("POST", "/swap/v1/swap", json=payload)
        if resp.status_code == 400 and _code(resp) in _NO_ROUTE:
            raise errors.no_route(quote.input_mint, quote.output_mint)
        body = _ok(resp, "/swap/v1/swap")
        try:
            tx = VersionedTransaction.from_bytes(base64.b64decode(body["swapTransaction"]))
            last_valid = int(body.get("lastValidBlockHeight") or 0)
        except (KeyError, TypeError, ValueError):
            raise errors.jupiter_unavailable("/swap/v1/swap: unexpected response") from None
        return sign_slot(tx, user), last_valid

    async def prices(self, mints: list[str]) -> dict[str, tuple[float, float]]:
        """Mint -> (USD price, update time); mints without a price are left out."""
        if not mints:
            return {}
        resp = await self._request("GET", "/price/v3", params={"ids": ",".join(mints)})
        if resp.status_code >= 400:
            raise errors.price_unavailable(f"/price/v3 answered {resp.status_code}")
        try:
            body = resp.json()
            now = time.time()
            return {
                mint: (float(entry["usdPrice"]), now)
                for mint, entry in body.items()
                if isinstance(entry, dict) and entry.get("usdPrice") is not None
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise errors.price_unavailable("/price/v3: unexpected response") from None


def sign_slot(tx: VersionedTransaction, user: Keypair) -> VersionedTransaction:
    """tx with the user's signature slot filled (other signatures kept)."""
    message = tx.message
    signers = message.account_keys[: message.header.num_required_signatures]
    if user.pubkey() not in signers:
        raise errors.jupiter_unavailable("the swap transaction does not ask for our signature")
    own = user.sign_message(to_bytes_versioned(message))
    sigs = [
        own if key == user.pubkey() else sig
        for key, sig in zip(signers, tx.signatures, strict=True)
    ]
    return VersionedTransaction.populate(message, sigs)


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("errorCode", ""))
    except (ValueError, AttributeError):
        return ""


def _ok(resp: httpx.Response, path: str) -> dict[str, Any]:
    if resp.status_code >= 400:
        raise errors.jupiter_unavailable(f"{path} answered {resp.status_code} {_code(resp)}")
    try:
        body = resp.json()
    except ValueError:
        raise errors.jupiter_unavailable(f"{path}: not JSON") from None
    if not isinstance(body, dict):
        raise errors.jupiter_unavailable(f"{path}: unexpected response")
    return body
