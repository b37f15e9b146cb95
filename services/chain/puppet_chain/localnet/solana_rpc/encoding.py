"""Solana JSON-RPC encodings: constants, base58, the error object and parameter decoding."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

LAMPORTS_PER_SIGNATURE = 5_000
SOLANA_CORE_VERSION = "2.2.7"
FEATURE_SET = 3_294_202_862
RENT_EXEMPT_EPOCH = 18_446_744_073_709_551_615
TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
MINT_LEN = 82
TOKEN_ACCOUNT_LEN = 165
FAUCET_LAMPORTS = 10**17
MAX_HISTORY = 100_000


class RpcError(Exception):
    """A JSON-RPC error object, raised by a method handler and written as the response."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The `error` member of the response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana uses for keys, signatures and instruction data."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of `b58encode`; raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + digit
    pad = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * pad + body


def param(params: Sequence[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index and params[index] is not None else default


def pubkey_of(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError as exc:
        raise RpcError(-32602, f"Invalid param: {exc}") from None


def decode(data: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(data, validate=True)
        if encoding == "base58":
            return b58decode(data)
    except ValueError as exc:
        raise RpcError(-32602, f"invalid transaction: failed to decode {encoding}: {exc}") from None
    raise RpcError(-32602, f"unsupported encoding: {encoding}. Supported encodings: base58, base64")


def decode_tx(data: Any, config: dict[str, Any]) -> VersionedTransaction:
    raw = decode(str(data), str(config.get("encoding") or "base58"))
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcError(-32602, f"invalid transaction: {exc}") from None
