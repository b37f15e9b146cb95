"""A 429 storm on X through the wire: "later, at T", then every accepted post sent once."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet_runtime.testing import load_sibling

if TYPE_CHECKING:
    from tests import fake_x, harness
else:
    fake_x = load_sibling(__file__, "fake_x")
    harness = load_sibling(__file__, "harness")

POSTS = 20


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running:
        yield running
        assert fake_x.validate(running.exchanges) == len(running.exchanges)


async def test_storm_queues_then_sends_every_post_once(tmp_path: Path, fake: fake_x.FakeX) -> None:
    user = fake.add_user("alice_x")
    async with harness.serving(harness.x_settings(tmp_path, fake)) as stub:
        await harness.x_account(stub, user, "alice")
        fake.storm_until = time.time() + 1.5
        reset = math.ceil(fake.storm_until)
        names = []
        for index in range(POSTS):
            item = (
                await stub.CreatePost(
                    pb.CreatePostRequest(
                        parent="accounts/alice", text=f"storm post {index}", request_id=f"s{index}"
                    )
                )
            ).item
            # "Later, at T": accepted and durable, due when X's window resets.
            assert item.state == s.OUTBOX_STATE_QUEUED, item
            assert item.next_attempt_time.seconds == reset
            names.append(item.name)
        limits = await stub.GetRateLimits(pb.GetRateLimitsRequest(account="accounts/alice"))
        (window,) = [r for r in limits.rate_limits if r.endpoint == "POST /2/tweets"]
        assert (window.remaining, window.reset_time.seconds) == (0, reset)
        assert limits.next_post_time.seconds == reset
        assert limits.queued_items == POSTS
        assert fake.storm_refusals == 1  # the planner held the other 19 back without asking X
        sent = [await harness.until_state(stub, name, s.OUTBOX_STATE_SENT) for name in names]
        assert time.time() >= fake.storm_until
        failed = await stub.ListOutboxItems(
            pb.ListOutboxItemsRequest(parent="accounts/alice", state=s.OUTBOX_STATE_FAILED)
        )
        assert not failed.items
        after = await stub.GetRateLimits(pb.GetRateLimitsRequest(account="accounts/alice"))
        assert after.queued_items == 0
    texts = sorted(t.text for t in fake.tweets.values())
    assert texts == sorted(f"storm post {i}" for i in range(POSTS))
    assert sorted(harness.post_ids(i)[0] for i in sent) == sorted(fake.tweets)
    assert fake.requests["POST /2/tweets"] == POSTS + fake.storm_refusals
