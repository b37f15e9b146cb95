"""SocialService through the wire: a real server over the sandbox network on port 0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import running, status_of
from puppet_social.server import build
from puppet_social.settings import SocialSettings

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub as Stub


def settings(data_dir: Path, **overrides: Any) -> SocialSettings:
    values: dict[str, Any] = {
        "port": 0,
        "data_dir": data_dir,
        "drain_s": 0,
        "shutdown_grace_s": 0,
        "log_format": "text",
        "default_tier": "unlimited",
        "outbox_interval_s": 0.05,
        "mention_poll_interval_s": 0.05,
    }
    values.update(overrides)
    return SocialSettings(**values)


@pytest.fixture
async def social(tmp_path: Path) -> AsyncIterator[Stub]:
    config = settings(tmp_path / "data")
    async with running(build(config), config) as (_, channel):
        yield rpc.SocialServiceStub(channel)


async def fails(call: Any, code: grpc.StatusCode, reason: str, field: str | None = None) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    got, info, bad = status_of(caught.value)
    assert got is code, caught.value.details()
    assert info is not None
    assert info.domain == "social.puppet"
    assert info.reason == reason
    if field is not None:
        assert bad is not None
        assert field in [v.field for v in bad.field_violations], bad


async def sandbox_account(stub: Stub, account_id: str, handle: str, **fields: Any) -> s.Account:
    made = await stub.CreateAccount(
        pb.CreateAccountRequest(
            account_id=account_id,
            account=s.Account(network=s.NETWORK_SANDBOX, handle=handle, **fields),
        )
    )
    return made.account


async def until_state(stub: Stub, name: str, state: int) -> s.OutboxItem:
    for _ in range(200):
        item = (await stub.GetOutboxItem(pb.GetOutboxItemRequest(name=name))).item
        if item.state == state:
            return item
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never reached {state}: {item}")


# accounts


async def test_create_get_list_and_update_accounts(social: Stub) -> None:
    made = await sandbox_account(social, "alice", "alice_a", display_name="Alice")
    assert made.name == "accounts/alice"
    assert made.user_id
    assert made.network == s.NETWORK_SANDBOX
    assert not made.has_credentials
    await sandbox_account(social, "bob", "bob_b", agents=["agents/bob"])
    got = await social.GetAccount(pb.GetAccountRequest(name="accounts/alice"))
    assert got.account == made
    first = await social.ListAccounts(pb.ListAccountsRequest(page_size=1))
    assert [a.name for a in first.accounts] == ["accounts/alice"]
    second = await social.ListAccounts(
        pb.ListAccountsRequest(page_size=1, page_token=first.next_page_token)
    )
    assert [a.name for a in second.accounts] == ["accounts/bob"]
    assert not second.next_page_token
    only = await social.ListAccounts(pb.ListAccountsRequest(agent="agents/bob"))
    assert [a.name for a in only.accounts] == ["accounts/bob"]
    updated = await social.UpdateAccount(
        pb.UpdateAccountRequest(
            account=s.Account(name="accounts/alice", display_name="Al", review_required=True),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    )
    assert updated.account.display_name == "Al"
    assert not updated.account.review_required
    verified = await social.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice"))
    assert verified.account.handle == "alice_a"


async def test_account_errors(social: Stub) -> None:
    await sandbox_account(social, "alice", "alice_a")
    await fails(
        social.CreateAccount(
            pb.CreateAccountRequest(
                account_id="alice", account=s.Account(network=s.NETWORK_SANDBOX, handle="x1")
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "ACCOUNT_ALREADY_EXISTS",
    )
    await fails(
        social.CreateAccount(
            pb.CreateAccountRequest(
                account_id="Bad Id", account=s.Account(network=s.NETWORK_SANDBOX, handle="x1")
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "account_id",
    )
    await fails(
        social.CreateAccount(
            pb.CreateAccountRequest(
                account_id="bob", account=s.Account(network=s.NETWORK_SANDBOX, handle="bad-handle")
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "account.handle",
    )
    await fails(
        social.CreateAccount(
            pb.CreateAccountRequest(account_id="xacct", account=s.Account(network=s.NETWORK_X))
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CREDENTIALS_MISSING",
    )
    await fails(
        social.GetAccount(pb.GetAccountRequest(name="accounts/nobody")),
        grpc.StatusCode.NOT_FOUND,
        "ACCOUNT_NOT_FOUND",
    )


async def test_accounts_survive_a_restart(tmp_path: Path) -> None:
    config = settings(tmp_path / "data")
    async with running(build(config), config) as (_, channel):
        await sandbox_account(rpc.SocialServiceStub(channel), "alice", "alice_a")
    async with running(build(config), config) as (_, channel):
        got = await rpc.SocialServiceStub(channel).GetAccount(
            pb.GetAccountRequest(name="accounts/alice")
        )
        assert got.account.handle == "alice_a"


# writes


async def test_post_is_sent_to_the_sandbox_and_is_idempotent(social: Stub) -> None:
    await sandbox_account(social, "alice", "alice_a")
    request = pb.CreatePostRequest(parent="accounts/alice", text="hello world", request_id="r1")
    first = (await social.CreatePost(request)).item
    assert first.kind == s.ACTION_KIND_POST
    sent = await until_state(social, first.name, s.OUTBOX_STATE_SENT)
    assert len(sent.posts) == 1
    again = (await social.CreatePost(request)).item
    assert again.name == first.name
    assert list(again.posts) == list(sent.posts)
    post = await social.GetPost(pb.GetPostRequest(name=sent.posts[0]))
    assert post.post.text == "hello world"
    assert post.post.author_account == "accounts/alice"
    await fails(
        social.CreatePost(
            pb.CreatePostRequest(parent="accounts/alice", text="different", request_id="r1")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    listed = await social.ListPosts(pb.ListPostsRequest(parent="accounts/-"))
    assert [p.text for p in listed.posts] == ["hello world"]
    reply = (
        await social.CreatePost(
            pb.CreatePostRequest(
                parent="accounts/alice",
                text="and more",
                in_reply_to=sent.posts[0],
                request_id="r2",
            )
        )
    ).item
    reply = await until_state(social, reply.name, s.OUTBOX_STATE_SENT)
    conversation = await social.GetConversation(pb.GetConversationRequest(post=reply.posts[0]))
    assert conversation.post.text == "and more"
    assert [p.text for p in conversation.ancestors] == ["hello world"]
    assert conversation.complete
    like = (
        await social.LikePost(
            pb.LikePostRequest(account="accounts/alice", post=sent.posts[0], request_id="l1")
        )
    ).item
    await until_state(social, like.name, s.OUTBOX_STATE_SENT)
    limits = await social.GetRateLimits(pb.GetRateLimitsRequest(account="accounts/alice"))
    assert limits.daily_posts_used == 2


async def test_bad_writes_name_the_field(social: Stub) -> None:
    await sandbox_account(social, "alice", "alice_a")
    await fails(
        social.CreatePost(pb.CreatePostRequest(parent="accounts/alice", text="hi")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "request_id",
    )
    await fails(
        social.CreatePost(pb.CreatePostRequest(parent="accounts/alice", request_id="r")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "text",
    )
    await fails(
        social.CreatePost(pb.CreatePostRequest(parent="alice", text="hi", request_id="r")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "parent",
    )
    await fails(
        social.CreatePost(
            pb.CreatePostRequest(parent="accounts/alice", text="x" * 281, request_id="r")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "TWEET_TOO_LONG",
    )
    await fails(
        social.LikePost(pb.LikePostRequest(account="accounts/alice", post="nope", request_id="r")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "post",
    )
    await fails(
        social.GetOutboxItem(pb.GetOutboxItemRequest(name="accounts/alice/outbox/abc")),
        grpc.StatusCode.NOT_FOUND,
        "OUTBOX_ITEM_NOT_FOUND",
    )


async def test_review_approve_and_reject(social: Stub) -> None:
    await sandbox_account(social, "alice", "alice_a", review_required=True)
    held = []
    for key in ("a", "b"):
        item = (
            await social.CreatePost(
                pb.CreatePostRequest(parent="accounts/alice", text=f"post {key}", request_id=key)
            )
        ).item
        assert item.state == s.OUTBOX_STATE_NEEDS_REVIEW
        held.append(item.name)
    waiting = await social.ListOutboxItems(
        pb.ListOutboxItemsRequest(parent="accounts/-", state=s.OUTBOX_STATE_NEEDS_REVIEW)
    )
    assert [i.name for i in waiting.items] == held
    await social.ApproveOutboxItem(pb.ApproveOutboxItemRequest(name=held[0], note="ok"))
    await until_state(social, held[0], s.OUTBOX_STATE_SENT)
    rejected = await social.RejectOutboxItem(pb.RejectOutboxItemRequest(name=held[1], note="no"))
    assert rejected.item.state == s.OUTBOX_STATE_REJECTED
    again = await social.RejectOutboxItem(pb.RejectOutboxItemRequest(name=held[1], note="no"))
    assert again.item.state == s.OUTBOX_STATE_REJECTED
    await fails(
        social.ApproveOutboxItem(pb.ApproveOutboxItemRequest(name=held[1])),
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOT_REVIEWABLE",
    )


# mentions


async def test_a_mention_reaches_the_mentioned_accounts_stream(social: Stub) -> None:
    await sandbox_account(social, "alice", "alice_a")
    await sandbox_account(social, "bob", "bob_b")
    stream = social.StreamMentions(pb.StreamMentionsRequest(parent="accounts/bob"))
    await asyncio.sleep(0.1)  # subscribed before the post
    await social.CreatePost(
        pb.CreatePostRequest(parent="accounts/alice", text="hi @bob_b", request_id="m1")
    )
    got = await asyncio.wait_for(stream.read(), 10)
    assert isinstance(got, pb.StreamMentionsResponse)
    assert got.mention.post.text == "hi @bob_b"
    assert got.mention.post.author_account == "accounts/alice"
    assert got.mention.name.startswith("accounts/bob/mentions/")
    stream.cancel()
    listed = await social.ListMentions(pb.ListMentionsRequest(parent="accounts/bob"))
    assert [m.post.text for m in listed.mentions] == ["hi @bob_b"]
