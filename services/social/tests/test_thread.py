"""CreateThread through the wire: a reply chain on the sandbox and on X, retried and resumed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import grpc
import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of
from puppet_social.network import AccountRef
from puppet_social.network.sandbox import SandboxNetwork
from puppet_social.outbox import Outbox, part_request_id, thread_text
from puppet_social.planner import RatePlanner, TierPolicy
from puppet_social.store import Action, Change, NewItem, State
from puppet_social.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from tests import fake_x, harness
else:
    fake_x = load_sibling(__file__, "fake_x")
    harness = load_sibling(__file__, "harness")

PARTS = ["1/3 the start", "2/3 the middle", "3/3 the end"]


class FakeClock(Protocol):
    """The conftest clock: a callable with a settable `now`."""

    now: float

    def __call__(self) -> float: ...


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running:
        yield running
        assert fake_x.validate(running.exchanges) == len(running.exchanges)


def thread(parent: str, request_id: str, texts: list[str] = PARTS) -> pb.CreateThreadRequest:
    return pb.CreateThreadRequest(
        parent=parent, texts=texts, request_id=request_id, agent="agents/alice"
    )


async def test_sandbox_thread_is_a_reply_chain_and_retries_return_it(tmp_path: Path) -> None:
    async with harness.serving(harness.settings(tmp_path)) as stub:
        await harness.sandbox_account(stub, "alice", "alice_a")
        first = (await stub.CreateThread(thread("accounts/alice", "t1"))).item
        assert first.kind == s.ACTION_KIND_THREAD
        assert list(first.texts) == PARTS
        item = await harness.until_state(stub, first.name, s.OUTBOX_STATE_SENT)
        assert len(item.posts) == 3
        previous = ""
        for name, text in zip(item.posts, PARTS, strict=True):
            post = (await stub.GetPost(pb.GetPostRequest(name=name))).post
            assert (post.text, post.in_reply_to) == (text, previous)
            previous = name
        again = (await stub.CreateThread(thread("accounts/alice", "t1"))).item
        assert (again.name, list(again.posts), again.state) == (item.name, list(item.posts), 5)
        listed = await stub.ListPosts(pb.ListPostsRequest(parent="accounts/alice"))
        assert len(listed.posts) == 3
        await harness.fails(
            stub.CreateThread(thread("accounts/alice", "t1", ["other", "parts"])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "REQUEST_ID_REUSED",
        )


async def test_thread_replying_to_a_post(tmp_path: Path) -> None:
    async with harness.serving(harness.settings(tmp_path)) as stub:
        await harness.sandbox_account(stub, "alice", "alice_a")
        await harness.sandbox_account(stub, "bob", "bob_b")
        root = (
            await stub.CreatePost(
                pb.CreatePostRequest(parent="accounts/bob", text="a question", request_id="q")
            )
        ).item
        root = await harness.until_state(stub, root.name, s.OUTBOX_STATE_SENT)
        request = thread("accounts/alice", "answer", ["part one", "part two"])
        request.in_reply_to = root.posts[0]
        item = (await stub.CreateThread(request)).item
        assert item.target == "accounts/alice/posts/" + harness.post_ids(root)[0]
        item = await harness.until_state(stub, item.name, s.OUTBOX_STATE_SENT)
        first = (await stub.GetPost(pb.GetPostRequest(name=item.posts[0]))).post
        assert first.in_reply_to.rsplit("/", 1)[1] == root.posts[0].rsplit("/", 1)[1]


async def test_thread_validation(tmp_path: Path) -> None:
    async with harness.serving(harness.settings(tmp_path)) as stub:
        await harness.sandbox_account(stub, "alice", "alice_a")
        for texts in ([], ["only one"], [str(i) for i in range(26)], ["fine", "  "]):
            await harness.fails(
                stub.CreateThread(thread("accounts/alice", "v", texts)),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_FIELD",
            )
        error = await harness.fails(
            stub.CreateThread(thread("accounts/alice", "v", ["fine", "x" * 281])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "TWEET_TOO_LONG",
        )
        _, info, _ = status_of(error)
        assert info is not None
        assert info.metadata["part"] == "1"
        await harness.fails(
            stub.CreateThread(thread("accounts/alice", "", ["a", "b"])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
        )
        await harness.fails(
            stub.CreateThread(thread("accounts/nobody", "v", ["a", "b"])),
            grpc.StatusCode.NOT_FOUND,
            "ACCOUNT_NOT_FOUND",
        )


async def test_sandbox_thread_resumes_after_a_crash_mid_thread(tmp_path: Path) -> None:
    config = harness.settings(tmp_path)
    async with harness.serving(config) as stub:
        await harness.sandbox_account(stub, "alice", "alice_a")
    # What a crash while sending part 2 leaves: part 1 sent, part 2 on the network but still
    # "sending" in the outbox, the thread item itself "sending".
    network = SandboxNetwork(tmp_path / "sandbox.sqlite3")
    store = SqliteStore(tmp_path / "social.sqlite3")
    await network.open()
    await store.open()
    try:
        me = AccountRef("alice_a")
        one = (await network.create_post(me, PARTS[0])).post
        two = (await network.create_post(me, PARTS[1], reply_to=one.id if one else None)).post
        assert one is not None
        assert two is not None
        now = one.created_at.timestamp()
        parent, _ = await store.create(
            NewItem("alice", "t", Action.THREAD, thread_text(PARTS)), now
        )
        claim = Change(claimed_at=now, add_attempt=True)
        await store.transition(parent.id, State.QUEUED, State.SENDING, now, claim)
        first, _ = await store.create(
            NewItem("alice", part_request_id("t", 0), Action.POST, PARTS[0]), now
        )
        await store.transition(first.id, State.QUEUED, State.SENDING, now, claim)
        await store.transition(
            first.id, State.SENDING, State.SENT, now, Change(network_post_id=one.id)
        )
        second, _ = await store.create(
            NewItem("alice", part_request_id("t", 1), Action.REPLY, PARTS[1], one.id), now
        )
        await store.transition(second.id, State.QUEUED, State.SENDING, now, claim)
    finally:
        await store.close()
        await network.close()
    async with harness.serving(config) as stub:
        name = f"accounts/alice/outbox/{parent.id}"
        item = await harness.until_state(stub, name, s.OUTBOX_STATE_SENT)
        assert harness.post_ids(item)[:2] == [one.id, two.id]
        listed = await stub.ListPosts(pb.ListPostsRequest(parent="accounts/alice"))
        assert [p.text for p in reversed(listed.posts)] == PARTS
        third = (await stub.GetPost(pb.GetPostRequest(name=item.posts[2]))).post
        assert third.in_reply_to.rsplit("/", 1)[1] == two.id


async def test_x_thread_resumes_after_a_crash_mid_thread(
    tmp_path: Path, fake: fake_x.FakeX
) -> None:
    user = fake.add_user("alice_x")
    config = harness.x_settings(tmp_path, fake)
    # Part 2 is posted on X but its answer never arrives before the service dies.
    fake.script.append(fake_x.held(30.0, skip=1))
    async with harness.serving(config) as stub:
        await harness.x_account(stub, user, "alice")
        call = asyncio.ensure_future(stub.CreateThread(thread("accounts/alice", "t")))
        for _ in range(500):
            if len(fake.tweets) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(fake.tweets) == 2
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        await call
    async with harness.serving(config) as stub:
        listed = await stub.ListOutboxItems(
            pb.ListOutboxItemsRequest(parent="accounts/alice", page_size=10)
        )
        (parent,) = [i for i in listed.items if i.kind == s.ACTION_KIND_THREAD]
        item = await harness.until_state(stub, parent.name, s.OUTBOX_STATE_SENT)
        again = (await stub.CreateThread(thread("accounts/alice", "t"))).item
        assert again.name == item.name
    tweets = sorted(fake.tweets.values(), key=lambda t: int(t.id))
    assert [t.text for t in tweets] == PARTS
    assert [t.replied_to for t in tweets] == [None, tweets[0].id, tweets[1].id]
    assert harness.post_ids(item) == [t.id for t in tweets]
    assert fake.requests["POST /2/tweets"] == 3


async def test_a_rate_limit_mid_thread_waits_for_the_reset(
    sqlite_store: SqliteStore, sandbox: SandboxNetwork, clock: FakeClock
) -> None:
    await sandbox.create_account("alice", tier="tiny")  # 2 posts per 15 minutes
    policies = {"free": TierPolicy(posts_per_24h=None, sends_per_second=100)}
    outbox = Outbox(sqlite_store, sandbox, RatePlanner(sqlite_store, clock, policies), clock)
    made, _ = await outbox.enqueue("alice", "t", Action.THREAD, text=thread_text(PARTS))
    await outbox.send_due()
    waiting = await outbox.get(made.id)
    assert waiting is not None
    assert waiting.state is State.QUEUED
    assert waiting.next_attempt_at > clock()
    assert len(await sandbox.posts_of("alice")) == 2
    assert await outbox.send_due() == 0  # nothing is due before the reset
    clock.now = waiting.next_attempt_at
    await outbox.send_due()
    done = await outbox.get(made.id)
    assert done is not None
    assert done.state is State.SENT
    posts = await sandbox.posts_of("alice")
    assert [p.text for p in reversed(posts)] == PARTS
    assert done.network_post_id.split() == [p.id for p in reversed(posts)]
    assert [p.in_reply_to_id for p in reversed(posts)] == [None, posts[2].id, posts[1].id]
