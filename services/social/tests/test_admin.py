"""Admin calls through the wire: review, operator posts and credentials need the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import load_sibling, running
from puppet_social.server import build

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub as Stub

contract = load_sibling(__file__, "test_contract")
TOKEN = "admin-token-for-tests"
ADMIN = (("authorization", f"Bearer {TOKEN}"),)
WRONG = (("authorization", "Bearer nope"),)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Stub]:
    config = contract.settings(tmp_path / "data", admin_token=TOKEN)
    async with running(build(config), config) as (_, channel):
        yield rpc.SocialServiceStub(channel)


def _operator(account_id: str = "op") -> pb.CreateAccountRequest:
    return pb.CreateAccountRequest(
        account_id=account_id,
        account=s.Account(network=s.NETWORK_SANDBOX, handle=account_id, operator=True),
    )


async def _denied(call: Any) -> None:
    await contract.fails(call, UNAUTHENTICATED, "ADMIN_TOKEN_REQUIRED")


async def test_operator_account_and_its_posts_need_the_token(guarded: Stub) -> None:
    await _denied(guarded.CreateAccount(_operator()))
    await _denied(guarded.CreateAccount(_operator(), metadata=WRONG))
    await guarded.CreateAccount(_operator(), metadata=ADMIN)
    post = pb.CreatePostRequest(parent="accounts/op", text="hello", request_id="r1")
    await _denied(guarded.CreatePost(post))
    sent = await guarded.CreatePost(post, metadata=ADMIN)
    assert sent.item.state == s.OUTBOX_STATE_SENT
    thread = pb.CreateThreadRequest(parent="accounts/op", texts=["one", "two"], request_id="t1")
    await _denied(guarded.CreateThread(thread))
    await guarded.CreateThread(thread, metadata=ADMIN)
    # a persona's own account posts without the token
    await contract.sandbox_account(guarded, "alice", "alice_a")
    mine = await guarded.CreatePost(
        pb.CreatePostRequest(parent="accounts/alice", text="hi @op", request_id="r2")
    )
    assert mine.item.state == s.OUTBOX_STATE_SENT


async def test_review_needs_the_token(guarded: Stub) -> None:
    await contract.sandbox_account(guarded, "alice", "alice_a", review_required=True)
    names = []
    for key in ("a", "b"):
        made = await guarded.CreatePost(
            pb.CreatePostRequest(parent="accounts/alice", text=f"post {key}", request_id=key)
        )
        assert made.item.state == s.OUTBOX_STATE_NEEDS_REVIEW
        names.append(made.item.name)
    approve = pb.ApproveOutboxItemRequest(name=names[0], note="ok")
    reject = pb.RejectOutboxItemRequest(name=names[1], note="no")
    await _denied(guarded.ApproveOutboxItem(approve))
    await _denied(guarded.RejectOutboxItem(reject, metadata=WRONG))
    assert (await guarded.ApproveOutboxItem(approve, metadata=ADMIN)).item.state in (
        s.OUTBOX_STATE_APPROVED,
        s.OUTBOX_STATE_SENDING,
        s.OUTBOX_STATE_SENT,
    )
    rejected = await guarded.RejectOutboxItem(reject, metadata=ADMIN)
    assert rejected.item.state == s.OUTBOX_STATE_REJECTED


async def test_credentials_need_the_token(guarded: Stub) -> None:
    creds = s.XCredentials(
        api_key="k", api_key_secret="ks", access_token="t", access_token_secret="ts"
    )
    await _denied(
        guarded.CreateAccount(
            pb.CreateAccountRequest(
                account_id="xacct", account=s.Account(network=s.NETWORK_X), credentials=creds
            )
        )
    )
    await contract.sandbox_account(guarded, "alice", "alice_a")
    await _denied(
        guarded.UpdateAccount(
            pb.UpdateAccountRequest(account=s.Account(name="accounts/alice"), credentials=creds)
        )
    )


async def test_without_a_token_only_loopback_servers_take_admin_calls(tmp_path: Path) -> None:
    loopback = contract.settings(tmp_path / "a")
    async with running(build(loopback), loopback) as (_, channel):
        await rpc.SocialServiceStub(channel).CreateAccount(_operator())
    everywhere = contract.settings(tmp_path / "b", host="0.0.0.0")
    async with running(build(everywhere), everywhere) as (_, channel):
        await _denied(rpc.SocialServiceStub(channel).CreateAccount(_operator()))
