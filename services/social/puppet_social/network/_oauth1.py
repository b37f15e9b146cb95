"""OAuth 1.0a HMAC-SHA1 request signing (RFC 5849 section 3), as X's user context expects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit


def encode(value: str) -> str:
    """RFC 3986 percent-encoding of RFC 5849 section 3.6 (only unreserved characters stay)."""
    return quote(value, safe="-._~")


def base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The signature base string; ``url``'s own query is folded into ``params``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    base_url = f"{parts.scheme.lower()}://{host}{parts.path or '/'}"
    pairs = [*parse_qsl(parts.query, keep_blank_values=True), *params]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((encode(k), encode(v)) for k, v in pairs))
    return "&".join(encode(p) for p in (method.upper(), base_url, normalized))


def signature(
    method: str,
    url: str,
    params: Iterable[tuple[str, str]],
    consumer_secret: str,
    token_secret: str,
) -> str:
    """Base64 HMAC-SHA1 of the base string, keyed with both secrets."""
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode()
    digest = hmac.new(key, base_string(method, url, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def authorization(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    form: Iterable[tuple[str, str]] = (),
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    """The ``Authorization: OAuth ...`` header value (JSON bodies are not signed; forms are)."""
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    oauth["oauth_signature"] = signature(
        method, url, [*oauth.items(), *form], consumer_secret, token_secret
    )
    return "OAuth " + ", ".join(f'{encode(k)}="{encode(v)}"' for k, v in sorted(oauth.items()))


def parse_authorization(header: str) -> dict[str, str]:
    """The oauth_* parameters of an ``Authorization: OAuth ...`` header (for servers and fakes)."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "oauth":
        return {}
    params: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            params[unquote(key)] = unquote(value.strip('"'))
    return params
