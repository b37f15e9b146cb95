"""Jupiter's error answers and the request checks that raise them."""

from __future__ import annotations

import json
from typing import Any

from puppet_runtime.local_http import Response
from solders.pubkey import Pubkey


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


def parse_mint(value: str | None, field: str) -> Pubkey:
    if not value:
        raise JupiterError(400, "INVALID_REQUEST", f"Query parameter {field} is required")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} is not a valid public key") from None


def parse_uint(value: Any, field: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} must be an integer") from None
    if number < 0:
        raise JupiterError(400, "INVALID_REQUEST", f"{field} must not be negative")
    return number
