"""A 401 from X holds the account (no back-off loop) until its credentials verify again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet_runtime.testing import load_sibling
from pymongo import AsyncMongoClient

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub

    from tests import fake_x, harness
else:
    fake_x = load_sibling(__file__, "fake_x")
    harness = load_sibling(__file__, "harness")

MENTIONS = "GET /2/users/:id/mentions"


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running:
        yield running
        assert fake_x.validate(running.exchanges) == len(running.exchanges)


def post(text: str, request_id: str) -> pb.CreatePostRequest:
    return pb.CreatePostRequest(parent="accounts/alice", text=text, request_id=request_id)


async def test_a_401_on_a_write_holds_the_account_until_verified(
    tmp_path: Path, fake: fake_x.FakeX
) -> None:
    user = fake.add_user("alice_x")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, user, "alice")
        fake.script.append(fake_x.unauthorized("POST /2/tweets"))
        item = (await stub.CreatePost(post("kept, not lost", "w1"))).item
        assert item.state == s.OUTBOX_STATE_QUEUED
        await harness.fails(
            stub.CreatePost(post("refused at once", "w2")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIALS_REJECTED",
        )
        await asyncio.sleep(0.3)  # several outbox passes: no retry reaches X
        assert fake.requests["POST /2/tweets"] == 1
        assert (await stub.GetOutboxItem(pb.GetOutboxItemRequest(name=item.name))).item.state == (
            s.OUTBOX_STATE_QUEUED
        )
        await stub.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice"))
        sent = await harness.until_state(stub, item.name, s.OUTBOX_STATE_SENT)
        later = (await stub.CreatePost(post("after the fix", "w3"))).item
        await harness.until_state(stub, later.name, s.OUTBOX_STATE_SENT)
    assert sorted(t.text for t in fake.tweets.values()) == ["after the fix", "kept, not lost"]
    assert harness.post_ids(sent)[0] in fake.tweets


async def test_revoked_credentials_stop_polling_until_replaced(
    tmp_path: Path, fake: fake_x.FakeX
) -> None:
    user = fake.add_user("alice_x")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, user, "alice")
        for _ in range(200):
            if fake.requests[MENTIONS]:
                break
            await asyncio.sleep(0.02)
        user.access_token_secret = "as-revoked"  # every call is a 401 from now on
        for _ in range(200):
            if fake.rejected_signatures:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        rejected = fake.rejected_signatures
        await asyncio.sleep(0.3)  # polls every 0.05 s before the hold
        assert fake.rejected_signatures == rejected
        await harness.fails(
            stub.CreatePost(post("not now", "p1")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIALS_REJECTED",
        )
        await harness.fails(
            stub.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIALS_REJECTED",
        )
        user.access_token_secret = "as-new-secret"
        await stub.UpdateAccount(
            pb.UpdateAccountRequest(
                account=s.Account(name="accounts/alice"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
                credentials=s.XCredentials(
                    api_key=user.api_key,
                    api_key_secret=user.api_key_secret,
                    access_token=user.access_token,
                    access_token_secret=user.access_token_secret,
                ),
            )
        )
        polls = fake.requests[MENTIONS]
        for _ in range(200):
            if fake.requests[MENTIONS] > polls:
                break
            await asyncio.sleep(0.02)
        assert fake.requests[MENTIONS] > polls
        item = (await stub.CreatePost(post("back", "p2"))).item
        await harness.until_state(stub, item.name, s.OUTBOX_STATE_SENT)


async def store_settings(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if backend == "sqlite":
        return {}
    uri = request.getfixturevalue("mongo_uri")
    database = f"t_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    for name in await client[database].list_collection_names():  # nx serves one namespace
        await client[database].drop_collection(name)
    await client.close()
    return {"store": "mongo", "mongo_uri": uri, "mongo_database": database}


async def rejected(stub: SocialServiceAsyncStub) -> bool:
    request = pb.GetAccountRequest(name="accounts/alice")
    return bool((await stub.GetAccount(request)).account.credentials_rejected)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def test_the_hold_survives_a_restart(
    tmp_path: Path, fake: fake_x.FakeX, backend: str, request: pytest.FixtureRequest
) -> None:
    user = fake.add_user("alice_x")
    config = harness.x_settings(tmp_path, fake, **await store_settings(backend, request))
    async with harness.serving(config) as stub:
        await harness.x_account(stub, user, "alice")
        assert not await rejected(stub)
        fake.script.append(fake_x.unauthorized("POST /2/tweets"))
        item = (await stub.CreatePost(post("kept across the restart", "h1"))).item
        assert item.state == s.OUTBOX_STATE_QUEUED
        assert await rejected(stub)
    async with harness.serving(config) as stub:
        assert await rejected(stub)
        polls = fake.requests[MENTIONS]
        await harness.fails(
            stub.CreatePost(post("refused after the restart", "h2")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "CREDENTIALS_REJECTED",
        )
        await asyncio.sleep(0.3)  # outbox passes and poll intervals: nothing reaches X
        assert (fake.requests[MENTIONS], fake.requests["POST /2/tweets"]) == (polls, 1)
        verified = await stub.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice"))
        assert not verified.account.credentials_rejected
        await harness.until_state(stub, item.name, s.OUTBOX_STATE_SENT)
    async with harness.serving(config) as stub:
        assert not await rejected(stub)
    assert [t.text for t in fake.tweets.values()] == ["kept across the restart"]
