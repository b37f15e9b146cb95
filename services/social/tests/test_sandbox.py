"""The sandbox network against a real SQLite file: the Network port as X behaves, and its limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from puppet_social.network import (
    AccountRef,
    DuplicateContent,
    Network,
    NetworkError,
    PostNotFound,
    RateLimited,
    Result,
    Unauthorized,
)
from puppet_social.network.sandbox import (
    AccountNotFound,
    HandleTaken,
    SandboxNetwork,
    TierLimits,
)

T0 = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sandbox(tmp_path: Path, clock: Clock) -> AsyncIterator[SandboxNetwork]:
    network = SandboxNetwork(tmp_path / "sandbox.db", clock=clock)
    await network.open()
    yield network
    await network.close()


async def test_is_a_network(sandbox: SandboxNetwork) -> None:
    network: Network = sandbox
    assert network is sandbox


async def test_accounts_have_numeric_ids_and_unique_handles(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("Alice", display_name="Alice A")
    bob = await sandbox.create_account("bob_2")
    assert alice.user_id.isdigit()
    assert int(bob.user_id) > int(alice.user_id)
    with pytest.raises(HandleTaken):
        await sandbox.create_account("ALICE")
    for bad in ("", "a" * 16, "has space", "dash-es", "émile"):
        with pytest.raises(ValueError, match="handle"):
            await sandbox.create_account(bad)
    with pytest.raises(ValueError, match="display_name"):
        await sandbox.create_account("carol", display_name="x" * 51)
    with pytest.raises(ValueError, match="tier"):
        await sandbox.create_account("carol", tier="platinum")
    accounts = await sandbox.list_accounts()
    assert [(a.handle, a.display_name, a.tier) for a in accounts] == [
        ("Alice", "Alice A", "free"),
        ("bob_2", "", "free"),
    ]
    assert await sandbox.me(AccountRef("alice")) == (alice.user_id, "Alice")
    assert await sandbox.me(AccountRef("", user_id=bob.user_id)) == (bob.user_id, "bob_2")
    with pytest.raises(Unauthorized):
        await sandbox.me(AccountRef("nobody"))


async def test_operator_defaults_to_unlimited(sandbox: SandboxNetwork) -> None:
    op = await sandbox.create_account("operator", operator=True)
    (account,) = await sandbox.list_accounts()
    assert account.operator
    assert account.tier == "unlimited"
    for i in range(30):
        result = await sandbox.create_post(op, f"announcement {i}")
    assert result.rate is not None
    assert result.rate.remaining is None


async def test_posts_replies_quotes_and_threads(sandbox: SandboxNetwork, clock: Clock) -> None:
    alice = await sandbox.create_account("alice")
    bob = await sandbox.create_account("bob")
    root = (await sandbox.create_post(alice, "hello world")).post
    assert root is not None
    assert root.conversation_id == root.id
    assert root.author_id == alice.user_id
    assert root.author_handle == "alice"
    assert root.created_at.timestamp() == T0
    clock.now += 1
    reply = (await sandbox.create_post(bob, "hi @Alice and @ghost", reply_to=root.id)).post
    assert reply is not None
    assert int(reply.id) > int(root.id)
    assert reply.in_reply_to_id == root.id
    assert reply.conversation_id == root.id
    assert reply.mentioned_handles == ("alice",)
    deeper = (await sandbox.create_post(alice, "thanks", reply_to=reply.id)).post
    assert deeper is not None
    assert deeper.conversation_id == root.id
    quote = (await sandbox.create_post(bob, "look at this", quote_of=root.id)).post
    assert quote is not None
    assert quote.quote_of_id == root.id
    assert quote.conversation_id == quote.id

    thread = await sandbox.conversation(bob, deeper.id)
    assert [p.id for p in thread] == [root.id, reply.id, deeper.id]
    assert [p.id for p in await sandbox.conversation(bob, reply.id)] == [root.id, reply.id]
    assert [p.id for p in await sandbox.conversation(bob, deeper.id, limit=2)] == [
        reply.id,
        deeper.id,
    ]
    got = await sandbox.get_post(bob, reply.id)
    assert got.post == reply


async def test_ids_increase_within_one_millisecond_and_across_restarts(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "sandbox.db"
    network = SandboxNetwork(path, clock=clock)
    await network.open()
    a = await network.create_account("a", tier="unlimited")
    ids = []
    for i in range(5):
        post = (await network.create_post(a, f"p{i}")).post
        assert post is not None
        ids.append(int(post.id))
    await network.close()
    clock.now -= 60  # a clock that went back must not reuse ids
    network = SandboxNetwork(path, clock=clock)
    await network.open()
    later = (await network.create_post(a, "after restart")).post
    assert later is not None
    assert ids == sorted(set(ids))
    assert int(later.id) > ids[-1]
    await network.close()


async def test_unknown_ids_are_post_not_found(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice")
    for missing in ("123", "not-a-number", "99999999999999999999999"):
        with pytest.raises(PostNotFound):
            await sandbox.get_post(alice, missing)
        with pytest.raises(PostNotFound):
            await sandbox.conversation(alice, missing)
        with pytest.raises(PostNotFound):
            await sandbox.like(alice, missing)
        with pytest.raises(PostNotFound):
            await sandbox.repost(alice, missing)
        with pytest.raises(PostNotFound):
            await sandbox.delete_post(alice, missing)
        with pytest.raises(PostNotFound) as refused:
            await sandbox.create_post(alice, f"reply {missing}", reply_to=missing)
        assert refused.value.rate is not None
        with pytest.raises(PostNotFound):
            await sandbox.create_post(alice, f"quote {missing}", quote_of=missing)
    assert await sandbox.timeline() == []
    with pytest.raises(NetworkError, match="since_id"):
        await sandbox.mentions(alice, since_id="latest")


async def test_unknown_accounts_are_unauthorized(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice")
    post = (await sandbox.create_post(alice, "hello")).post
    assert post is not None
    ghost = AccountRef("ghost", user_id=alice.user_id)  # the handle decides, not the id
    with pytest.raises(Unauthorized):
        await sandbox.create_post(ghost, "boo")
    with pytest.raises(Unauthorized):
        await sandbox.create_post(AccountRef("", user_id="1"), "boo")
    with pytest.raises(Unauthorized):
        await sandbox.like(ghost, post.id)
    with pytest.raises(Unauthorized):
        await sandbox.repost(ghost, post.id)
    with pytest.raises(Unauthorized):
        await sandbox.delete_post(ghost, post.id)
    with pytest.raises(Unauthorized):
        await sandbox.get_post(ghost, post.id)
    with pytest.raises(Unauthorized):
        await sandbox.conversation(ghost, post.id)
    with pytest.raises(Unauthorized):
        await sandbox.mentions(ghost)
    assert [p.text for p in await sandbox.timeline()] == ["hello"]


async def test_delete_is_author_only(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice")
    bob = await sandbox.create_account("bob")
    post = (await sandbox.create_post(alice, "mine @bob")).post
    assert post is not None
    with pytest.raises(Unauthorized):
        await sandbox.delete_post(bob, post.id)
    assert (await sandbox.like(bob, post.id)).rate is not None
    await sandbox.like(bob, post.id)  # liking twice is harmless, as on X
    await sandbox.repost(bob, post.id)
    result = await sandbox.delete_post(alice, post.id)
    assert result.rate is not None
    assert result.rate.endpoint == "DELETE /2/tweets/:id"
    with pytest.raises(PostNotFound):
        await sandbox.get_post(alice, post.id)
    assert (await sandbox.mentions(bob))[0] == []
    # Deleted text may be posted again at once.
    await sandbox.create_post(alice, "mine @bob")


async def test_duplicate_content_within_24_hours(sandbox: SandboxNetwork, clock: Clock) -> None:
    alice = await sandbox.create_account("alice", tier="unlimited")
    bob = await sandbox.create_account("bob", tier="unlimited")
    await sandbox.create_post(alice, "same words")
    await sandbox.create_post(bob, "same words")  # another account may say it
    clock.now += 23 * 3600
    with pytest.raises(DuplicateContent) as refused:
        await sandbox.create_post(alice, "same words")
    assert refused.value.rate is not None
    await sandbox.create_post(alice, "Same words")  # not identical
    clock.now += 3600 + 1
    assert (await sandbox.create_post(alice, "same words")).post is not None


async def test_post_limits_reset_with_the_window(tmp_path: Path, clock: Clock) -> None:
    tiers = {"tiny": TierLimits(posts_per_15min=2, posts_per_24h=3, mention_reads_per_15min=1)}
    network = SandboxNetwork(tmp_path / "s.db", clock=clock, tiers=tiers)
    await network.open()
    alice = await network.create_account("alice", tier="tiny")
    first = (await network.create_post(alice, "one")).rate
    assert first is not None
    assert (first.endpoint, first.limit, first.remaining) == ("POST /2/tweets", 2, 1)
    assert first.reset_at == T0 + 900
    assert (first.day_limit, first.day_remaining, first.day_reset_at) == (3, 2, T0 + 86400)
    clock.now += 10
    second = (await network.create_post(alice, "two")).rate
    assert second is not None
    assert (second.remaining, second.day_remaining) == (0, 1)
    with pytest.raises(RateLimited) as limited:
        await network.create_post(alice, "three")
    assert limited.value.rate is not None
    assert limited.value.rate.remaining == 0
    assert limited.value.rate.reset_at == T0 + 900
    await network.close()

    # The windows survive a restart.
    network = SandboxNetwork(tmp_path / "s.db", clock=clock, tiers=tiers)
    await network.open()
    with pytest.raises(RateLimited):
        await network.create_post(alice, "three")
    clock.now = T0 + 900
    third = (await network.create_post(alice, "three")).rate
    assert third is not None
    assert (third.remaining, third.reset_at, third.day_remaining) == (1, T0 + 1800, 0)
    clock.now += 900
    with pytest.raises(RateLimited) as capped:
        await network.create_post(alice, "four")
    day = capped.value.rate
    assert day is not None
    assert (day.remaining, day.day_remaining, day.day_reset_at) == (2, 0, T0 + 86400)
    clock.now = T0 + 86400
    assert (await network.create_post(alice, "four")).post is not None
    await network.close()


async def test_mention_reads_are_limited(sandbox: SandboxNetwork, clock: Clock) -> None:
    alice = await sandbox.create_account("alice")  # free: one mentions read per 15 minutes
    posts, rate = await sandbox.mentions(alice)
    assert posts == []
    assert rate is not None
    assert (rate.endpoint, rate.limit, rate.remaining) == ("GET /2/users/:id/mentions", 1, 0)
    with pytest.raises(RateLimited) as limited:
        await sandbox.mentions(alice)
    assert limited.value.rate is not None
    assert limited.value.rate.reset_at == T0 + 900
    clock.now += 900
    await sandbox.mentions(alice)


async def test_free_tier_posts_per_day(sandbox: SandboxNetwork, clock: Clock) -> None:
    alice = await sandbox.create_account("alice")
    for i in range(17):
        clock.now += 1
        await sandbox.create_post(alice, f"post {i}")
    with pytest.raises(RateLimited) as limited:
        await sandbox.create_post(alice, "one too many")
    assert limited.value.rate is not None
    assert limited.value.rate.day_remaining == 0


async def test_mentions_order_since_id_and_limit(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice", tier="unlimited")
    bob = await sandbox.create_account("bob", tier="unlimited")
    carol = await sandbox.create_account("carol", tier="unlimited")
    own = (await sandbox.create_post(alice, "my post")).post
    assert own is not None
    texts = ["hey @alice", "@ALICE again", "no mention", "@carol only"]
    posted = [(await sandbox.create_post(bob, text)).post for text in texts]
    implicit = (await sandbox.create_post(carol, "replying without a handle", reply_to=own.id)).post
    await sandbox.create_post(alice, "talking to myself @alice", reply_to=own.id)
    assert posted[0] is not None
    assert posted[1] is not None
    assert implicit is not None
    want = [posted[0].id, posted[1].id, implicit.id]

    everything, _ = await sandbox.mentions(alice)
    assert [p.id for p in everything] == want
    newest, _ = await sandbox.mentions(alice, limit=2)
    assert [p.id for p in newest] == want[1:]
    first, _ = await sandbox.mentions(alice, since_id=own.id, limit=2)
    assert [p.id for p in first] == want[:2]
    rest, _ = await sandbox.mentions(alice, since_id=first[-1].id)
    assert [p.id for p in rest] == want[2:]
    assert (await sandbox.mentions(alice, since_id=rest[-1].id))[0] == []
    carols, _ = await sandbox.mentions(carol)
    assert [p.text for p in carols] == ["@carol only"]


async def test_timelines_page_newest_first(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice", tier="unlimited")
    bob = await sandbox.create_account("bob", tier="unlimited")
    for i in range(5):
        await sandbox.create_post(alice if i % 2 else bob, f"post {i}")
    everyone = await sandbox.timeline()
    assert [p.text for p in everyone] == [f"post {i}" for i in reversed(range(5))]
    page1 = await sandbox.timeline(limit=2)
    page2 = await sandbox.timeline(after_id=page1[-1].id, limit=2)
    assert [p.text for p in page1 + page2] == ["post 4", "post 3", "post 2", "post 1"]
    alices = await sandbox.posts_of("ALICE")
    assert [p.text for p in alices] == ["post 3", "post 1"]
    assert [p.text for p in await sandbox.posts_of("alice", after_id=alices[0].id)] == ["post 1"]
    with pytest.raises(AccountNotFound):
        await sandbox.posts_of("nobody")


async def test_everything_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "sandbox.db"
    network = SandboxNetwork(path, clock=clock)
    await network.open()
    alice = await network.create_account("alice")
    bob = await network.create_account("bob")
    root = (await network.create_post(alice, "persist me")).post
    assert root is not None
    reply = (await network.create_post(bob, "@alice persisted", reply_to=root.id)).post
    await network.close()

    network = SandboxNetwork(path, clock=clock)
    await network.open()
    assert [a.handle for a in await network.list_accounts()] == ["alice", "bob"]
    assert (await network.get_post(bob, root.id)).post == root
    mentions, _ = await network.mentions(alice)
    assert list(mentions) == [reply]
    with pytest.raises(DuplicateContent):
        await network.create_post(alice, "persist me")
    with pytest.raises(HandleTaken):
        await network.create_account("Bob")
    await network.close()


async def test_two_personas_converse(sandbox: SandboxNetwork, clock: Clock) -> None:
    """A posts, B replies mentioning A, A finds it in mentions and replies: one thread."""
    a = await sandbox.create_account("persona_a", tier="basic")
    b = await sandbox.create_account("persona_b", tier="basic")
    opener = (await sandbox.create_post(a, "Who else thinks sandboxes are underrated?")).post
    assert opener is not None

    clock.now += 30
    seen_by_b, _ = await sandbox.mentions(b)
    assert seen_by_b == []
    answer = (await sandbox.create_post(b, "@persona_a me, obviously", reply_to=opener.id)).post
    assert answer is not None

    clock.now += 30
    inbox, rate = await sandbox.mentions(a, since_id=opener.id)
    assert [p.id for p in inbox] == [answer.id]
    assert rate is not None
    assert rate.remaining == 9
    mention = inbox[0]
    assert mention.author_handle == "persona_b"
    assert mention.mentioned_handles == ("persona_a",)
    context = await sandbox.conversation(a, mention.id)
    assert [p.author_handle for p in context] == ["persona_a", "persona_b"]
    back = (await sandbox.create_post(a, "@persona_b glad to hear it", reply_to=mention.id)).post
    assert back is not None
    assert back.in_reply_to_id == answer.id
    assert back.conversation_id == opener.id

    clock.now += 30
    inbox_b, _ = await sandbox.mentions(b)
    assert [p.id for p in inbox_b] == [back.id]
    assert (await sandbox.mentions(a, since_id=answer.id))[0] == []
    thread = await sandbox.conversation(b, back.id)
    assert [p.id for p in thread] == [opener.id, answer.id, back.id]


async def test_concurrent_posts_get_distinct_ids(sandbox: SandboxNetwork) -> None:
    alice = await sandbox.create_account("alice", tier="unlimited")
    results = await asyncio.gather(*(sandbox.create_post(alice, f"n{i}") for i in range(50)))
    ids = {r.post.id for r in results if r.post is not None}
    assert len(ids) == 50
    assert len(await sandbox.timeline(limit=100)) == 50


async def test_concurrent_refusals_are_committed_alone(sandbox: SandboxNetwork) -> None:
    # Concurrent writes share a transaction: a refused post (its count committed, X-like) and an
    # unknown account (rolled back) answer their own errors and leave the others' posts alone.
    alice = await sandbox.create_account("alice", tier="free")  # 17 posts per 15 minutes
    bob = await sandbox.create_account("bob", tier="unlimited")
    calls = [sandbox.create_post(alice, f"a{i}") for i in range(20)]
    calls += [sandbox.create_post(AccountRef(handle="nobody"), "who")]
    calls += [sandbox.create_post(bob, f"b{i}") for i in range(6)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, RateLimited) for r in results[:20]) == 3
    assert isinstance(results[20], Unauthorized)
    assert all(isinstance(r, Result) for r in results[21:])
    assert len(await sandbox.timeline(limit=100)) == 23
    with pytest.raises(RateLimited):  # the refusals counted against the window
        await sandbox.create_post(alice, "still refused")


async def test_closed_network_refuses_calls(tmp_path: Path) -> None:
    network = SandboxNetwork(tmp_path / "x.db")
    with pytest.raises(RuntimeError, match="not open"):
        await network.list_accounts()
    await network.open()
    await network.close()
    await network.close()
    with pytest.raises(RuntimeError, match="not open"):
        await network.me(AccountRef("alice"))
