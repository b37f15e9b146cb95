"""Managed accounts: persisted rows, an in-memory cache, and the AccountRef each action runs as."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from puppet_social.network import AccountRef, Credentials

SANDBOX = "sandbox"
X = "x"


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    """Plain credential strings as persisted; never logged or returned."""

    api_key: str
    api_key_secret: str
    access_token: str
    access_token_secret: str

    def __repr__(self) -> str:
        return "StoredCredentials(***)"

    def as_credentials(self) -> Credentials:
        return Credentials(
            SecretStr(self.api_key),
            SecretStr(self.api_key_secret),
            SecretStr(self.access_token),
            SecretStr(self.access_token_secret),
        )


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One managed account; times are Unix seconds (verify_time 0 = never verified)."""

    account_id: str
    network: str
    handle: str = ""
    user_id: str = ""
    display_name: str = ""
    agents: tuple[str, ...] = ()
    review_required: bool = False
    daily_post_cap: int = 0
    operator: bool = False
    credentials: StoredCredentials | None = field(default=None, repr=False)
    verify_time: float = 0.0
    create_time: float = 0.0
    credentials_rejected: bool = False
    """Held: the network answered 401 to these credentials (see Outbox.hold)."""


class CredentialsKeyError(Exception):
    """The credentials key is malformed, or does not decrypt the stored credentials."""


class CredentialCipher:
    """AES-256-GCM for credentials at rest; the account id is the associated data.

    A row's ciphertext therefore only decrypts as the account it was written for. The stored
    form is ``v1:`` + urlsafe base64 of a 12-byte random nonce followed by the ciphertext.

    Args:
        key: urlsafe base64 of 32 random bytes (``CredentialCipher.new_key()``).
    """

    PREFIX = "v1:"

    def __init__(self, key: SecretStr) -> None:
        try:
            raw = base64.urlsafe_b64decode(key.get_secret_value().strip().encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise CredentialsKeyError(
                "the credentials key must be urlsafe base64 of 32 bytes"
            ) from None
        self._aead = AESGCM(raw)

    def __repr__(self) -> str:
        return "CredentialCipher(***)"

    @staticmethod
    def new_key() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()

    @classmethod
    def from_key_file(cls, path: Path) -> CredentialCipher:
        """The cipher of the key in ``path``, creating the file (mode 0600) when missing."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(SecretStr(path.read_text()))
        with os.fdopen(fd, "w") as out:
            out.write(cls.new_key())
        return cls(SecretStr(path.read_text()))

    def encrypt(self, account_id: str, creds: StoredCredentials) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(asdict(creds)).encode()
        sealed = self._aead.encrypt(nonce, plain, account_id.encode())
        return self.PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, account_id: str, token: str) -> StoredCredentials:
        try:
            if not token.startswith(self.PREFIX):
                raise ValueError("unknown format")
            blob = base64.urlsafe_b64decode(token[len(self.PREFIX) :].encode())
            plain = self._aead.decrypt(blob[:12], blob[12:], account_id.encode())
            return StoredCredentials(**json.loads(plain))
        except (InvalidTag, ValueError, TypeError, binascii.Error):
            raise CredentialsKeyError(
                f"the stored credentials of account {account_id!r} do not decrypt with the "
                "configured credentials key"
            ) from None


def _dump(record: AccountRecord, cipher: CredentialCipher) -> dict[str, Any]:
    body = asdict(record)
    body["agents"] = list(record.agents)
    body.pop("credentials")
    if record.credentials is not None:
        body["credentials_sealed"] = cipher.encrypt(record.account_id, record.credentials)
    return body


def _load(raw: str | dict[str, Any], cipher: CredentialCipher) -> AccountRecord:
    body = dict(json.loads(raw) if isinstance(raw, str) else raw)
    body.pop("_id", None)
    sealed = body.pop("credentials_sealed", None)
    body.pop("credentials", None)  # never written in plain text
    body["agents"] = tuple(body.get("agents", ()))
    creds = cipher.decrypt(body["account_id"], sealed) if sealed is not None else None
    return AccountRecord(**body, credentials=creds)


class AccountStore(Protocol):
    """Persistence of accounts: whole rows, keyed by account_id."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load_all(self) -> Sequence[AccountRecord]: ...

    async def put(self, record: AccountRecord) -> None: ...


class SqliteAccountStore:
    """Accounts as JSON rows in one SQLite file."""

    def __init__(self, path: Path, cipher: CredentialCipher) -> None:
        self._path = path
        self._cipher = cipher
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False)
            db.execute("CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, body TEXT)")
            db.commit()
            return db

        self._db = await asyncio.to_thread(connect)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteAccountStore is not open")
        return self._db

    async def load_all(self) -> Sequence[AccountRecord]:
        db = self._conn()
        async with self._lock:
            rows = await asyncio.to_thread(
                lambda: db.execute("SELECT body FROM accounts ORDER BY id").fetchall()
            )
        return [_load(row[0], self._cipher) for row in rows]

    async def put(self, record: AccountRecord) -> None:
        db = self._conn()

        def write() -> None:
            db.execute(
                "INSERT OR REPLACE INTO accounts (id, body) VALUES (?, ?)",
                (record.account_id, json.dumps(_dump(record, self._cipher))),
            )
            db.commit()

        async with self._lock:
            await asyncio.to_thread(write)


class MongoAccountStore:
    """Accounts as documents of the accounts collection."""

    def __init__(self, uri: str, database: str, cipher: CredentialCipher) -> None:
        self._cipher = cipher
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        self._accounts = self._client[database]["accounts"]

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.close()

    async def load_all(self) -> Sequence[AccountRecord]:
        return [_load(doc, self._cipher) async for doc in self._accounts.find({}).sort("_id", 1)]

    async def put(self, record: AccountRecord) -> None:
        doc = _dump(record, self._cipher)
        await self._accounts.replace_one({"_id": record.account_id}, doc, upsert=True)


class AccountExists(Exception):
    """An account with this id is already stored."""


class Accounts:
    """Every managed account, cached in memory, written through to the store."""

    def __init__(self, store: AccountStore, default: Credentials | None = None) -> None:
        self._store = store
        self._default = default
        self._cache: dict[str, AccountRecord] = {}
        self._lock = asyncio.Lock()

    @property
    def has_default_credentials(self) -> bool:
        return self._default is not None

    async def open(self) -> None:
        await self._store.open()
        self._cache = {r.account_id: r for r in await self._store.load_all()}

    async def close(self) -> None:
        await self._store.close()

    def get(self, account_id: str) -> AccountRecord | None:
        return self._cache.get(account_id)

    def all(self) -> list[AccountRecord]:
        return [self._cache[k] for k in sorted(self._cache)]

    def by_handle(self, handle: str) -> AccountRecord | None:
        folded = handle.casefold()
        for record in self._cache.values():
            if record.handle.casefold() == folded:
                return record
        return None

    def by_user_id(self, user_id: str) -> AccountRecord | None:
        for record in self._cache.values():
            if user_id and record.user_id == user_id:
                return record
        return None

    async def create(self, record: AccountRecord) -> AccountRecord:
        async with self._lock:
            if record.account_id in self._cache:
                raise AccountExists(record.account_id)
            await self._store.put(record)
            self._cache[record.account_id] = record
        return record

    async def save(self, record: AccountRecord) -> AccountRecord:
        async with self._lock:
            await self._store.put(record)
            self._cache[record.account_id] = record
        return record

    def credentials_of(self, record: AccountRecord) -> Credentials | None:
        if record.credentials is not None:
            return record.credentials.as_credentials()
        return self._default

    def ref(self, account_id: str) -> AccountRef:
        """The AccountRef an action of account_id runs as (own credentials, else the default)."""
        record = self._cache.get(account_id)
        if record is None:
            return AccountRef(handle=account_id)
        return self.ref_of(record)

    def ref_of(self, record: AccountRecord) -> AccountRef:
        creds = None if record.network == SANDBOX else self.credentials_of(record)
        return AccountRef(handle=record.handle, user_id=record.user_id, credentials=creds)


def with_changes(record: AccountRecord, **changes: Any) -> AccountRecord:
    return replace(record, **changes)
