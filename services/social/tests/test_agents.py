"""The persona (agent) on outbox items and accounts: stored, returned and filterable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import load_sibling, running
from puppet_social.server import build

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub as Stub

contract = load_sibling(__file__, "test_contract")


@pytest.fixture
async def social(tmp_path: Path) -> AsyncIterator[Stub]:
    config = contract.settings(tmp_path / "data")
    async with running(build(config), config) as (_, channel):
        yield rpc.SocialServiceStub(channel)


async def test_outbox_items_carry_and_filter_by_agent(social: Stub) -> None:
    await contract.sandbox_account(
        social, "shared", "shared_s", agents=["agents/ann", "agents/ben"]
    )
    await contract.sandbox_account(social, "solo", "solo_s", agents=["agents/cat"])
    ann = await social.CreatePost(
        pb.CreatePostRequest(parent="accounts/shared", text="a", agent="agents/ann", request_id="1")
    )
    assert ann.item.agent == "agents/ann"
    ben = await social.CreatePost(
        pb.CreatePostRequest(parent="accounts/shared", text="b", agent="agents/ben", request_id="2")
    )
    post = ben.item.posts[0]
    like = await social.LikePost(
        pb.LikePostRequest(account="accounts/solo", post=post, agent="agents/cat", request_id="3")
    )
    assert like.item.agent == "agents/cat"
    repost = await social.RepostPost(
        pb.RepostPostRequest(account="accounts/solo", post=post, request_id="4")
    )
    assert repost.item.agent == ""
    got = await social.GetOutboxItem(pb.GetOutboxItemRequest(name=ann.item.name))
    assert got.item.agent == "agents/ann"
    thread = await social.CreateThread(
        pb.CreateThreadRequest(
            parent="accounts/shared", texts=["t1", "t2"], agent="agents/ben", request_id="5"
        )
    )
    assert thread.item.agent == "agents/ben"

    async def names(parent: str, agent: str) -> list[str]:
        listed = await social.ListOutboxItems(pb.ListOutboxItemsRequest(parent=parent, agent=agent))
        return sorted(i.name for i in listed.items)

    assert await names("accounts/-", "agents/ann") == [ann.item.name]
    assert ben.item.name in await names("accounts/shared", "agents/ben")
    assert await names("accounts/solo", "agents/ann") == []
    assert len(await names("accounts/-", "")) >= 5
    accounts = await social.ListAccounts(pb.ListAccountsRequest(agent="agents/cat"))
    assert [a.name for a in accounts.accounts] == ["accounts/solo"]
    assert (
        await social.GetAccount(pb.GetAccountRequest(name="accounts/shared"))
    ).account.agents == [
        "agents/ann",
        "agents/ben",
    ]
    await contract.fails(
        social.ListOutboxItems(pb.ListOutboxItemsRequest(parent="accounts/-", agent="ann")),
        contract.grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "agent",
    )
    assert like.item.state == s.OUTBOX_STATE_SENT
