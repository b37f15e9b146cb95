"""Hypothesis throws random requests at every SocialService RPC.

Every answer is OK or a deliberate status (never INTERNAL or UNKNOWN); INVALID_FIELD names the
field; and a failed write leaves nothing half-written (accounts and outbox items unchanged).
Half the examples start from a valid request and overwrite random fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import (
    build_message,
    call_sync,
    fuzz_scalars,
    load_sibling,
    message_values,
    serve_in_thread,
)
from puppet_social.server import build

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

contract = load_sibling(__file__, "test_contract")
SERVICE = pb.DESCRIPTOR.services_by_name["SocialService"]
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
WRITES = {
    "CreateAccount",
    "UpdateAccount",
    "CreatePost",
    "CreateThread",
    "DeletePost",
    "LikePost",
    "RepostPost",
    "ApproveOutboxItem",
    "RejectOutboxItem",
}
NAMES = [
    "accounts/fuzz",
    "accounts/rev",
    "accounts/op",
    "accounts/-",
    "accounts/nobody",
    "accounts/FUZZ",
    "accounts/fuzz/posts/1",
    "accounts/-/posts/1",
    "accounts/fuzz/posts/999999",
    "accounts/fuzz/outbox/00",
    "accounts/",
    "agents/fuzz",
    "agents/",
    "fuzz",
    "@fuzz https://example.com 😀 日本語",
    "display_name",
    "agents",
    "review_required",
    "daily_post_cap",
]
SCALARS = fuzz_scalars(NAMES, huge=["x" * 20_001, "é" * 300, "\x00", "accounts/" + "a" * 80])
STREAM_TIMEOUT_S = 0.15


@dataclass
class World:
    stub: rpc.SocialServiceStub
    valid: dict[str, Any]

    def snapshot(self) -> tuple[list[s.Account], list[str]]:
        accounts = self.stub.ListAccounts(pb.ListAccountsRequest(page_size=500), timeout=5)
        items = self.stub.ListOutboxItems(
            pb.ListOutboxItemsRequest(parent="accounts/-", page_size=500), timeout=5
        )
        return list(accounts.accounts), sorted(i.name for i in items.items)


def _valid(stub: rpc.SocialServiceStub) -> dict[str, Any]:
    def account(account_id: str, **fields: Any) -> None:
        stub.CreateAccount(
            pb.CreateAccountRequest(
                account_id=account_id,
                account=s.Account(network=s.NETWORK_SANDBOX, handle=account_id, **fields),
            ),
            timeout=5,
        )

    account("fuzz", agents=["agents/fuzz"])
    account("rev", review_required=True)
    account("op", operator=True)
    post = stub.CreatePost(
        pb.CreatePostRequest(parent="accounts/fuzz", text="seed @rev", request_id="seed"),
        timeout=5,
    ).item.posts[0]
    review = stub.CreatePost(
        pb.CreatePostRequest(parent="accounts/rev", text="to review", request_id="seed"),
        timeout=5,
    ).item.name
    return {
        "CreateAccount": pb.CreateAccountRequest(
            account_id="made", account=s.Account(network=s.NETWORK_SANDBOX, handle="made")
        ),
        "GetAccount": pb.GetAccountRequest(name="accounts/fuzz"),
        "ListAccounts": pb.ListAccountsRequest(agent="agents/fuzz"),
        "UpdateAccount": pb.UpdateAccountRequest(
            account=s.Account(name="accounts/fuzz", display_name="Fuzz"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        "VerifyAccount": pb.VerifyAccountRequest(name="accounts/fuzz"),
        "CreatePost": pb.CreatePostRequest(
            parent="accounts/fuzz", text="hello", agent="agents/fuzz", request_id="p"
        ),
        "CreateThread": pb.CreateThreadRequest(
            parent="accounts/fuzz", texts=["one", "two"], request_id="t"
        ),
        "DeletePost": pb.DeletePostRequest(name=post, request_id="d"),
        "LikePost": pb.LikePostRequest(account="accounts/rev", post=post, request_id="l"),
        "RepostPost": pb.RepostPostRequest(account="accounts/rev", post=post, request_id="r"),
        "GetPost": pb.GetPostRequest(name=post),
        "GetConversation": pb.GetConversationRequest(post=post),
        "ListPosts": pb.ListPostsRequest(parent="accounts/-"),
        "ListMentions": pb.ListMentionsRequest(parent="accounts/-"),
        "StreamMentions": pb.StreamMentionsRequest(parent="accounts/rev", after_post_id="0"),
        "GetOutboxItem": pb.GetOutboxItemRequest(name=review),
        "ListOutboxItems": pb.ListOutboxItemsRequest(parent="accounts/-"),
        "ApproveOutboxItem": pb.ApproveOutboxItemRequest(name=review, note="fine"),
        "RejectOutboxItem": pb.RejectOutboxItemRequest(name=review, note="no"),
        "GetRateLimits": pb.GetRateLimitsRequest(account="accounts/fuzz"),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server (sandbox network, SQLite) in a background thread, seeded; a sync channel."""
    config = contract.settings(tmp_path_factory.mktemp("fuzz"), outbox_interval_s=0.5)
    with serve_in_thread(lambda: build(config), config) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = rpc.SocialServiceStub(channel)
        yield World(stub, _valid(stub))
        channel.close()


def fuzz(method: str) -> Any:
    """A test that sends random requests to one RPC (one test per RPC, named after it)."""
    descriptor = SERVICE.methods_by_name[method].input_type
    request_class = getattr(pb, descriptor.name)
    streaming = SERVICE.methods_by_name[method].server_streaming

    @examples(
        max_examples=25 if streaming else 40,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(values=message_values(descriptor, SCALARS), from_valid=st.booleans())
    def test(world: World, values: dict[str, Any], from_valid: bool) -> None:
        request = build_message(request_class, values)
        if from_valid:
            base = request_class()
            base.CopyFrom(world.valid[method])
            base.MergeFrom(request)
            request = base
        before = world.snapshot() if method in WRITES else None
        outcome = call_sync(
            getattr(world.stub, method),
            request,
            timeout=STREAM_TIMEOUT_S if streaming else 10.0,
        )
        shown = (method, str(request)[:300], outcome)
        assert outcome.code not in BAD, shown
        if streaming and outcome.code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return
        if not outcome.ok:
            assert outcome.info is not None, shown
            assert outcome.info.domain == "social.puppet", shown
        if outcome.info is not None and outcome.info.reason == "INVALID_FIELD":
            assert outcome.fields, shown
        if before is not None and not outcome.ok:
            assert world.snapshot() == before, shown

    return test


for _method in SERVICE.methods:
    globals()[f"test_fuzz_{_method.name}"] = fuzz(_method.name)


def test_every_rpc_has_a_valid_example(world: World) -> None:
    assert set(world.valid) == {method.name for method in SERVICE.methods}
    outcome = call_sync(world.stub.GetAccount, world.valid["GetAccount"])
    assert outcome.ok, outcome


def test_huge_values_give_small_errors(world: World) -> None:
    """Found by the fuzz: an error echoing a 20,000-character value overflowed the trailers."""
    huge = "x" * 20_001
    mask = call_sync(
        world.stub.UpdateAccount,
        pb.UpdateAccountRequest(
            account=s.Account(name="accounts/fuzz"),
            update_mask=field_mask_pb2.FieldMask(paths=[huge]),
        ),
    )
    handle = call_sync(
        world.stub.CreateAccount,
        pb.CreateAccountRequest(
            account_id="huge", account=s.Account(network=s.NETWORK_SANDBOX, handle=huge)
        ),
    )
    assert (mask.fields, handle.fields) == (["update_mask"], ["account.handle"])
