"""X credentials at rest: encrypted in SQLite and MongoDB rows, absent from logs and errors."""

from __future__ import annotations

import logging
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import load_sibling, running
from puppet_social.accounts import (
    AccountRecord,
    CredentialCipher,
    CredentialsKeyError,
    MongoAccountStore,
    SqliteAccountStore,
    StoredCredentials,
)
from puppet_social.server import build
from pydantic import SecretStr
from pymongo import AsyncMongoClient

if TYPE_CHECKING:
    from tests import fake_x
else:
    fake_x = load_sibling(__file__, "fake_x")

contract = load_sibling(__file__, "test_contract")


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running_fake:
        yield running_fake


def secrets_of(user: fake_x.User) -> list[str]:
    return [user.api_key, user.api_key_secret, user.access_token, user.access_token_secret]


def creds_of(user: fake_x.User) -> s.XCredentials:
    return s.XCredentials(
        api_key=user.api_key,
        api_key_secret=user.api_key_secret,
        access_token=user.access_token,
        access_token_secret=user.access_token_secret,
    )


def raw_sqlite(path: Path) -> str:
    """Every cell of every table of one SQLite file, as text."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        cells = [repr(row) for t in tables for row in db.execute(f"SELECT * FROM {t}")]
    finally:
        db.close()
    return "\n".join(cells)


def x_settings(data: Path, fake: fake_x.FakeX, **overrides: Any) -> Any:
    return contract.settings(
        data, network="x", x_base_url=fake.base_url, log_level="DEBUG", **overrides
    )


async def test_sqlite_rows_logs_and_errors_hold_no_secret(
    tmp_path: Path, fake: fake_x.FakeX, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = fake.add_user("alice_x")
    data = tmp_path / "data"
    config = x_settings(data, fake)
    details: list[str] = []
    async with running(build(config), config) as (_, channel):
        stub = rpc.SocialServiceStub(channel)
        made = await stub.CreateAccount(
            pb.CreateAccountRequest(
                account_id="alice",
                account=s.Account(network=s.NETWORK_X, agents=["agents/alice"]),
                credentials=creds_of(alice),
            )
        )
        assert made.account.has_credentials
        assert made.account.handle == "alice_x"
        sent = await stub.CreatePost(
            pb.CreatePostRequest(parent="accounts/alice", text="hello", request_id="r1")
        )
        assert sent.item.state == s.OUTBOX_STATE_SENT
        # a rejected replacement is refused without echoing what was sent
        wrong = creds_of(alice)
        wrong.access_token_secret = "as-wrong-" + uuid.uuid4().hex
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UpdateAccount(
                pb.UpdateAccountRequest(account=s.Account(name="accounts/alice"), credentials=wrong)
            )
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        details.append(caught.value.details() or "")
        details.append(repr(caught.value.trailing_metadata()))
        secrets = [*secrets_of(alice), wrong.access_token_secret]
    key = data / "credentials.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for path in data.glob("*.sqlite3"):
        rows = raw_sqlite(path)
        assert all(secret not in rows for secret in secrets), path
    assert "v1:" in raw_sqlite(data / "accounts.sqlite3")
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert logged
    for text in (logged, *details):
        assert all(secret not in text for secret in secrets)
    # a restarted service decrypts them again with the key file
    async with running(build(config), config) as (_, channel):
        stub = rpc.SocialServiceStub(channel)
        again = await stub.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice"))
        assert again.account.handle == "alice_x"


async def test_configured_key_is_used_and_a_wrong_key_fails_to_start(
    tmp_path: Path, fake: fake_x.FakeX
) -> None:
    alice = fake.add_user("alice_x")
    data = tmp_path / "data"
    config = x_settings(data, fake, credentials_key=CredentialCipher.new_key())
    async with running(build(config), config) as (_, channel):
        await rpc.SocialServiceStub(channel).CreateAccount(
            pb.CreateAccountRequest(
                account_id="alice",
                account=s.Account(network=s.NETWORK_X),
                credentials=creds_of(alice),
            )
        )
    assert not (data / "credentials.key").exists()
    other = x_settings(data, fake, credentials_key=CredentialCipher.new_key())
    with pytest.raises(CredentialsKeyError) as caught:
        async with running(build(other), other):
            pass
    assert "alice" in str(caught.value)
    assert all(secret not in str(caught.value) for secret in secrets_of(alice))


def test_malformed_key_is_refused() -> None:
    with pytest.raises(CredentialsKeyError):
        CredentialCipher(SecretStr("too-short"))


def _record(account_id: str) -> tuple[AccountRecord, list[str]]:
    secrets = [f"{name}-{uuid.uuid4().hex}" for name in ("ck", "cs", "at", "as")]
    creds = StoredCredentials(*secrets)
    return AccountRecord(account_id=account_id, network="x", credentials=creds), secrets


async def test_rows_only_decrypt_as_their_own_account(tmp_path: Path) -> None:
    cipher = CredentialCipher(SecretStr(CredentialCipher.new_key()))
    record, _ = _record("alice")
    sealed = cipher.encrypt("alice", record.credentials)  # type: ignore[arg-type]
    assert cipher.decrypt("alice", sealed) == record.credentials
    with pytest.raises(CredentialsKeyError):
        cipher.decrypt("bob", sealed)
    store = SqliteAccountStore(tmp_path / "a.sqlite3", cipher)
    await store.open()
    await store.put(record)
    assert await store.load_all() == [record]
    await store.close()


@pytest.mark.mongo
async def test_mongo_documents_hold_no_secret(mongo_uri: str) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    await client[database].drop_collection("accounts")  # nx serves one namespace
    cipher = CredentialCipher(SecretStr(CredentialCipher.new_key()))
    store = MongoAccountStore(mongo_uri, database, cipher)
    await store.open()
    record, secrets = _record("alice")
    await store.put(record)
    assert await store.load_all() == [record]
    await store.close()
    try:
        docs = [doc async for doc in client[database]["accounts"].find({})]
    finally:
        await client.close()
    assert docs
    assert all(secret not in repr(docs) for secret in secrets)
