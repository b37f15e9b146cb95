"""Opaque page tokens shared by every List RPC: a cursor bound to the query it came from."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode(query: str, cursor: Any) -> str:
    """A token that resumes query after cursor (any JSON value)."""
    raw = json.dumps({"q": _fingerprint(query), "c": cursor}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(query: str, token: str) -> Any:
    """The cursor inside token; ValueError if it is malformed or belongs to another query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise ValueError("is not a token this service issued") from err
    if not isinstance(body, dict) or set(body) != {"q", "c"}:
        raise ValueError("is not a token this service issued")
    if body["q"] != _fingerprint(query):
        raise ValueError("belongs to a different query (parent or filters changed)")
    return body["c"]
