"""Reads on X through the wire (ListPosts, READ_RATE_LIMITED) and NOT_OWN_POST on both networks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import timestamp_pb2
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of

if TYPE_CHECKING:
    from tests import fake_x, harness
else:
    fake_x = load_sibling(__file__, "fake_x")
    harness = load_sibling(__file__, "harness")


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running:
        yield running
        assert fake_x.validate(running.exchanges) == len(running.exchanges)


async def test_list_posts_on_x_pages_newest_first(tmp_path: Path, fake: fake_x.FakeX) -> None:
    alice = fake.add_user("alice_x")
    bob = fake.add_user("bob_x")
    mine = [fake.add_tweet(alice, f"post {i}").id for i in range(8)]
    fake.add_tweet(bob, "not alice's")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, alice, "alice")
        for size in (3, 5):
            seen: list[str] = []
            token = ""
            for _ in range(5):
                page = await stub.ListPosts(
                    pb.ListPostsRequest(parent="accounts/alice", page_size=size, page_token=token)
                )
                assert len(page.posts) <= size
                seen += [p.id for p in page.posts]
                token = page.next_page_token
                if not token:
                    break
            assert seen == mine[::-1], size
        first = (await stub.ListPosts(pb.ListPostsRequest(parent="accounts/alice"))).posts[0]
        assert first.name == f"accounts/alice/posts/{mine[-1]}"
        assert (first.text, first.author_handle, first.author_account) == (
            "post 7",
            "alice_x",
            "accounts/alice",
        )
        future = timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600)
        later = await stub.ListPosts(
            pb.ListPostsRequest(parent="accounts/alice", start_time=future)
        )
        assert not later.posts
        await harness.fails(
            stub.ListPosts(pb.ListPostsRequest(parent="accounts/-")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
        )
    assert any(e.query.get("pagination_token") for e in fake.exchanges)
    assert any(e.query.get("until_id") for e in fake.exchanges)


async def test_reads_over_the_limit_are_read_rate_limited(
    tmp_path: Path, fake: fake_x.FakeX
) -> None:
    alice = fake.add_user("alice_x")
    tweet = fake.add_tweet(alice, "hello")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, alice, "alice")
        fake.script.append(fake_x.rate_limited("GET /2/tweets/:id", reset_in_s=90))
        error = await harness.fails(
            stub.GetPost(pb.GetPostRequest(name=f"accounts/alice/posts/{tweet.id}")),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "READ_RATE_LIMITED",
        )
        _, info, _ = status_of(error)
        assert info is not None
        retry = datetime.fromisoformat(info.metadata["retry_time"].replace("Z", "+00:00"))
        assert 60 < retry.timestamp() - datetime.now(UTC).timestamp() <= 91
        fake.script.append(fake_x.rate_limited("GET /2/users/:id/tweets"))
        await harness.fails(
            stub.ListPosts(pb.ListPostsRequest(parent="accounts/alice")),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "READ_RATE_LIMITED",
        )
        fake.script.append(fake_x.rate_limited("GET /2/users/me"))
        await harness.fails(
            stub.VerifyAccount(pb.VerifyAccountRequest(name="accounts/alice")),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "READ_RATE_LIMITED",
        )
        got = await stub.GetPost(pb.GetPostRequest(name=f"accounts/alice/posts/{tweet.id}"))
        assert got.post.text == "hello"


async def test_deleting_another_accounts_post_on_x(tmp_path: Path, fake: fake_x.FakeX) -> None:
    alice = fake.add_user("alice_x")
    bob = fake.add_user("bob_x")
    theirs = fake.add_tweet(bob, "bob's own")
    mine = fake.add_tweet(alice, "alice's own")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, alice, "alice")
        await harness.fails(
            stub.DeletePost(
                pb.DeletePostRequest(name=f"accounts/alice/posts/{theirs.id}", request_id="d1")
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "NOT_OWN_POST",
        )
        item = (
            await stub.DeletePost(
                pb.DeletePostRequest(name=f"accounts/alice/posts/{mine.id}", request_id="d2")
            )
        ).item
        await harness.until_state(stub, item.name, s.OUTBOX_STATE_SENT)
    assert set(fake.tweets) == {theirs.id}


async def test_deleting_another_accounts_post_on_the_sandbox(tmp_path: Path) -> None:
    async with harness.serving(harness.settings(tmp_path)) as stub:
        await harness.sandbox_account(stub, "alice", "alice_a")
        await harness.sandbox_account(stub, "bob", "bob_b")
        made = (
            await stub.CreatePost(
                pb.CreatePostRequest(parent="accounts/bob", text="bob's", request_id="b")
            )
        ).item
        made = await harness.until_state(stub, made.name, s.OUTBOX_STATE_SENT)
        post_id = harness.post_ids(made)[0]
        await harness.fails(
            stub.DeletePost(
                pb.DeletePostRequest(name=f"accounts/alice/posts/{post_id}", request_id="d")
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "NOT_OWN_POST",
        )
        own = (
            await stub.DeletePost(
                pb.DeletePostRequest(name=f"accounts/bob/posts/{post_id}", request_id="d")
            )
        ).item
        await harness.until_state(stub, own.name, s.OUTBOX_STATE_SENT)
        again = (
            await stub.DeletePost(
                pb.DeletePostRequest(name=f"accounts/bob/posts/{post_id}", request_id="d-again")
            )
        ).item
        await harness.until_state(stub, again.name, s.OUTBOX_STATE_SENT)
