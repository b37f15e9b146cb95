"""A crash between "sending" and "sent" on X: reconciled on restart, never posted twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet_runtime.testing import load_sibling
from puppet_social.store import Action, Change, NewItem, State
from puppet_social.store.sqlite import SqliteStore

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


def post(text: str, request_id: str) -> pb.CreatePostRequest:
    return pb.CreatePostRequest(parent="accounts/alice", text=text, request_id=request_id)


async def seed_sending(data_dir: Path, text: str, request_id: str) -> str:
    """What a crash after the claim leaves in the outbox: the item "sending"."""
    store = SqliteStore(data_dir / "social.sqlite3")
    await store.open()
    try:
        now = time.time()
        row, _ = await store.create(NewItem("alice", request_id, Action.POST, text), now)
        claim = Change(claimed_at=now, add_attempt=True)
        await store.transition(row.id, State.QUEUED, State.SENDING, now, claim)
    finally:
        await store.close()
    return f"accounts/alice/outbox/{row.id}"


async def test_accepted_by_x_then_the_service_died(tmp_path: Path, fake: fake_x.FakeX) -> None:
    user = fake.add_user("alice_x")
    config = harness.x_settings(tmp_path, fake)
    fake.script.append(fake_x.held(30.0))
    async with harness.serving(config) as stub:
        await harness.x_account(stub, user, "alice")
        call = asyncio.ensure_future(stub.CreatePost(post("posted, answer lost", "r1")))
        for _ in range(500):
            if fake.tweets:
                break
            await asyncio.sleep(0.01)
        (tweet,) = fake.tweets.values()
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
        await call
    async with harness.serving(config) as stub:
        listed = await stub.ListOutboxItems(pb.ListOutboxItemsRequest(parent="accounts/alice"))
        (item,) = listed.items
        assert item.state == s.OUTBOX_STATE_SENT
        assert harness.post_ids(item) == [tweet.id]
        again = (await stub.CreatePost(post("posted, answer lost", "r1"))).item
        assert (again.name, again.state) == (item.name, s.OUTBOX_STATE_SENT)
        await asyncio.sleep(0.2)  # a few outbox passes: nothing more goes out
    assert [t.text for t in fake.tweets.values()] == ["posted, answer lost"]
    assert fake.requests["POST /2/tweets"] == 1


async def test_claimed_but_never_reached_x_is_sent_once(tmp_path: Path, fake: fake_x.FakeX) -> None:
    user = fake.add_user("alice_x")
    config = harness.x_settings(tmp_path, fake)
    async with harness.serving(config) as stub:
        await harness.x_account(stub, user, "alice")
    name = await seed_sending(tmp_path, "never left the building", "r2")
    async with harness.serving(config) as stub:
        item = await harness.until_state(stub, name, s.OUTBOX_STATE_SENT)
    (tweet,) = fake.tweets.values()
    assert tweet.text == "never left the building"
    assert harness.post_ids(item) == [tweet.id]


async def test_reconcile_waits_out_a_failed_lookup(tmp_path: Path, fake: fake_x.FakeX) -> None:
    user = fake.add_user("alice_x")
    config = harness.x_settings(tmp_path, fake)
    async with harness.serving(config) as stub:
        await harness.x_account(stub, user, "alice")
    name = await seed_sending(tmp_path, "looked up twice", "r3")
    fake.add_tweet(user, "looked up twice")
    fake.script.append(fake_x.server_error("GET /2/users/:id/tweets"))
    async with harness.serving(config) as stub:
        item = await harness.until_state(stub, name, s.OUTBOX_STATE_SENT)
    (tweet,) = fake.tweets.values()
    assert harness.post_ids(item) == [tweet.id]
    lookups = [e.status for e in fake.exchanges if e.path.endswith("/tweets") and e.method == "GET"]
    assert lookups[:2] == [503, 200]
