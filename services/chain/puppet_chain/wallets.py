"""Wallet keys: parse a secret (base58, JSON array or hex) and seal it at rest with AES-GCM."""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import string
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from puppet_chain import errors

_HEX = frozenset(string.hexdigits)
_NONCE = 12


def parse_secret(secret: str) -> Keypair:
    """The keypair in secret; SECRET_INVALID (never quoting it) for anything else."""
    raw = _secret_bytes(secret.strip())
    if raw is None:
        raise errors.secret_invalid()
    try:
        return Keypair.from_seed(raw) if len(raw) == 32 else Keypair.from_bytes(raw)
    except BaseException:
        raise errors.secret_invalid() from None


def _secret_bytes(text: str) -> bytes | None:
    if text.startswith("["):
        return _json_bytes(text)
    if len(text) in (64, 128) and set(text) <= _HEX:
        return bytes.fromhex(text)
    return _base58_bytes(text)


def _json_bytes(text: str) -> bytes | None:
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) not in (32, 64):
        return None
    if not all(type(v) is int and 0 <= v <= 255 for v in values):
        return None
    return bytes(values)


def _base58_bytes(text: str) -> bytes | None:
    # solders decodes 32-byte (Pubkey) and 64-byte (Keypair) base58 strings; no other length.
    try:
        return bytes(Keypair.from_base58_string(text))
    except BaseException:
        pass
    try:
        return bytes(Pubkey.from_string(text))
    except BaseException:
        return None


class Keystore:
    """Seals keypairs with AES-256-GCM; the wallet address is the associated data."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the keystore key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, keypair: Keypair) -> bytes:
        nonce = os.urandom(_NONCE)
        address = str(keypair.pubkey()).encode()
        return nonce + self._aead.encrypt(nonce, bytes(keypair), address)

    def open(self, sealed: bytes, address: str) -> Keypair:
        try:
            raw = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], address.encode())
        except InvalidTag:
            raise ValueError(f"the key of {address} does not open with this keystore key") from None
        return Keypair.from_bytes(raw)


def decode_key(text: str) -> bytes:
    """A 32-byte key from hex or base64 text."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("the keystore key is neither 64 hex digits nor base64") from None
    if len(key) != 32:
        raise ValueError("the keystore key must be 32 bytes")
    return key


def key_file(path: Path) -> bytes:
    """The key in path (hex), created 0600 with a random key when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return decode_key(path.read_text())
