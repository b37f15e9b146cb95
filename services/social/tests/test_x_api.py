"""XApiNetwork through a real fake X that checks signatures; answers checked against the spec."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from openapi_core.exceptions import OpenAPIError
from puppet_runtime.testing import load_sibling
from puppet_social.network import (
    AccountRef,
    Credentials,
    DuplicateContent,
    NetworkError,
    PostNotFound,
    RateLimited,
    Transient,
    Unauthorized,
)
from puppet_social.network._oauth1 import authorization, signature
from puppet_social.network.x_api import XApiNetwork
from pydantic import SecretStr

if TYPE_CHECKING:
    from tests import fake_x
else:
    fake_x = load_sibling(__file__, "fake_x")


@pytest.fixture
def fake() -> Iterator[fake_x.FakeX]:
    with fake_x.serve() as running:
        yield running
        # Every answer the fake gave in the test must be one the spec allows.
        assert fake_x.validate(running.exchanges) == len(running.exchanges)


@pytest.fixture
async def x(fake: fake_x.FakeX) -> AsyncIterator[XApiNetwork]:
    network = XApiNetwork(base_url=fake.base_url, timeout_s=2.0)
    yield network
    await network.close()


def ref(user: fake_x.User, *, with_id: bool = True) -> AccountRef:
    return AccountRef(user.username, user.id if with_id else "", user.credentials())


def secrets_of(user: fake_x.User) -> list[str]:
    return [user.api_key, user.api_key_secret, user.access_token, user.access_token_secret]


def test_signer_matches_rfc5849_example() -> None:
    oauth = [
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131202"),
        ("oauth_nonce", "chapoH"),
    ]
    url = "http://photos.example.net/photos?file=vacation.jpg&size=original"
    got = signature("GET", url, oauth, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
    assert got == "MdpQcU8iPSUjWoN/UDMsK2sui9I="


def test_signer_matches_twitter_documented_example() -> None:
    header = authorization(
        "POST",
        "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        consumer_key="xvz1evFS4wEEPTGEFPHBog",
        consumer_secret="kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        token="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        token_secret="LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        form=[("status", "Hello Ladies + Gentlemen, a signed OAuth request!")],
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp=1318622958,
    )
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in header


def test_spec_check_rejects_a_wrong_body() -> None:
    good = fake_x.Exchange(
        "POST",
        "/2/users/1/likes",
        {},
        b"{}",
        200,
        "application/json",
        b'{"data":{"liked":true}}',
        {},
    )
    assert fake_x.validate([good]) == 1
    bad = dataclasses.replace(good, body=b'{"data":{"liked":"yes"}}')
    with pytest.raises(OpenAPIError):
        fake_x.validate([bad])


async def test_me_verifies_signature(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    assert await x.me(ref(alice)) == (alice.id, "alice")
    assert fake.rejected_signatures == 0


async def test_wrong_secret_is_unauthorized(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    bad = Credentials(
        api_key=SecretStr(alice.api_key),
        api_key_secret=SecretStr("not-the-secret"),
        access_token=SecretStr(alice.access_token),
        access_token_secret=SecretStr(alice.access_token_secret),
    )
    with pytest.raises(Unauthorized):
        await x.me(AccountRef("alice", alice.id, bad))
    assert fake.rejected_signatures == 1
    with pytest.raises(Unauthorized, match="no credentials"):
        await x.me(AccountRef("alice"))


async def test_post_reply_quote_and_read_back(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    first = await x.create_post(ref(alice), "hello @bob")
    assert first.post is not None
    assert first.post.conversation_id == first.post.id
    assert first.post.mentioned_handles == ("bob",)
    assert first.rate is not None
    assert first.rate.endpoint == "POST /2/tweets"
    assert (first.rate.limit, first.rate.remaining) == (100, 99)
    assert first.rate.reset_at is not None
    assert first.rate.reset_at > time.time()
    assert (first.rate.day_limit, first.rate.day_remaining) == (100, 99)
    assert first.rate.day_reset_at is not None

    reply = await x.create_post(ref(bob), "hi back", reply_to=first.post.id)
    quote = await x.create_post(ref(bob), "look at this", quote_of=first.post.id)
    assert reply.post is not None
    assert quote.post is not None
    assert reply.post.in_reply_to_id == first.post.id
    assert quote.post.quote_of_id == first.post.id

    got = (await x.get_post(ref(alice), reply.post.id)).post
    assert got is not None
    assert (got.author_id, got.author_handle, got.text) == (bob.id, "bob", "hi back")
    assert got.conversation_id == first.post.id
    assert got.in_reply_to_id == first.post.id
    assert got.created_at.tzinfo is not None
    read_quote = (await x.get_post(ref(alice), quote.post.id)).post
    assert read_quote is not None
    assert read_quote.quote_of_id == first.post.id
    read_first = (await x.get_post(ref(bob), first.post.id)).post
    assert read_first is not None
    assert read_first.mentioned_handles == ("bob",)
    assert fake.rejected_signatures == 0


async def test_delete_like_repost(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    tweet = fake.add_tweet(bob, "like me")
    liked = await x.like(ref(alice, with_id=False), tweet.id)
    assert liked.rate is not None
    assert liked.rate.endpoint == "POST /2/users/:id/likes"
    await x.repost(ref(alice), tweet.id)
    assert (alice.id, tweet.id) in fake.likes
    assert (alice.id, tweet.id) in fake.retweets
    deleted = await x.delete_post(ref(bob), tweet.id)
    assert deleted.rate is not None
    assert tweet.id not in fake.tweets


async def test_missing_posts_are_post_not_found(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    for call in (
        x.get_post(ref(alice), "123"),
        x.delete_post(ref(alice), "123"),
        x.like(ref(alice), "123"),
        x.repost(ref(alice), "123"),
        x.create_post(ref(alice), "re", reply_to="123"),
        x.create_post(ref(alice), "qt", quote_of="123"),
    ):
        with pytest.raises(PostNotFound):
            await call


async def test_conversation_oldest_first_up_to_the_post(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    root = fake.add_tweet(alice, "root")
    one = fake.add_tweet(bob, "one", reply_to=root.id)
    two = fake.add_tweet(alice, "two", reply_to=one.id)
    fake.add_tweet(bob, "later", reply_to=two.id)
    fake.add_tweet(bob, "elsewhere")
    thread = await x.conversation(ref(bob), two.id)
    assert [p.text for p in thread] == ["root", "one", "two"]
    assert [p.author_handle for p in thread] == ["alice", "bob", "alice"]
    assert [p.text for p in await x.conversation(ref(bob), two.id, limit=2)] == ["one", "two"]
    search = [e for e in fake.exchanges if e.path == "/2/tweets/search/recent"]
    assert search[0].query["query"] == f"conversation_id:{root.id}"


async def test_mentions_since_id_and_order(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    first = fake.add_tweet(bob, "@alice one")
    fake.add_tweet(bob, "not a mention of alice@example")
    second = fake.add_tweet(bob, "hey @Alice two")
    posts, rate = await x.mentions(ref(alice, with_id=False))
    assert [p.id for p in posts] == [first.id, second.id]
    assert posts[0].author_handle == "bob"
    assert "alice" in posts[0].mentioned_handles
    assert rate is not None
    assert rate.endpoint == "GET /2/users/:id/mentions"
    assert rate.remaining == 179
    newer, _ = await x.mentions(ref(alice), since_id=first.id)
    assert [p.id for p in newer] == [second.id]
    none, _ = await x.mentions(ref(alice), since_id=second.id)
    assert list(none) == []
    assert fake.exchanges[-1].query["since_id"] == second.id


async def test_rate_limit_window_counted_then_429(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    fake.limits["GET /2/users/me"] = 2
    await x.me(ref(alice))
    await x.me(ref(alice))
    with pytest.raises(RateLimited) as caught:
        await x.me(ref(alice))
    assert caught.value.rate is not None
    assert caught.value.rate.remaining == 0
    assert caught.value.rate.reset_at is not None
    assert caught.value.rate.reset_at > time.time()


async def test_day_cap_on_posts(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    fake.day_limit = 1
    await x.create_post(ref(alice), "one")
    with pytest.raises(RateLimited) as caught:
        await x.create_post(ref(alice), "two")
    assert caught.value.rate is not None
    assert caught.value.rate.day_remaining == 0


async def test_scripted_429_carries_reset(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    fake.script.append(fake_x.rate_limited("POST /2/tweets", reset_in_s=120))
    with pytest.raises(RateLimited) as caught:
        await x.create_post(ref(alice), "hello")
    assert caught.value.rate is not None
    assert caught.value.rate.reset_at is not None
    assert caught.value.rate.reset_at >= time.time() + 100
    assert (await x.create_post(ref(alice), "hello")).post is not None


async def test_duplicate_content(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice = fake.add_user("alice")
    await x.create_post(ref(alice), "same words")
    with pytest.raises(DuplicateContent):
        await x.create_post(ref(alice), "same words")
    fake.script.append(fake_x.duplicate())
    with pytest.raises(DuplicateContent):
        await x.create_post(ref(alice), "fresh words")


@pytest.mark.parametrize(
    ("scripted", "error"),
    [
        (fake_x.unauthorized(), Unauthorized),
        (fake_x.server_error(status=500), Transient),
        (fake_x.server_error(status=503), Transient),
    ],
)
async def test_error_mapping(
    fake: fake_x.FakeX, x: XApiNetwork, scripted: object, error: type[NetworkError]
) -> None:
    alice = fake.add_user("alice")
    fake.script.append(scripted)  # type: ignore[arg-type]
    with pytest.raises(error):
        await x.me(ref(alice))


async def test_acting_as_someone_else_is_unauthorized(fake: fake_x.FakeX, x: XApiNetwork) -> None:
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    tweet = fake.add_tweet(bob, "mine")
    with pytest.raises(Unauthorized):
        await x.delete_post(ref(alice), tweet.id)
    with pytest.raises(Unauthorized):
        await x.like(AccountRef("alice", bob.id, alice.credentials()), tweet.id)


async def test_slow_answer_is_transient_within_timeout(fake: fake_x.FakeX) -> None:
    alice = fake.add_user("alice")
    fake.script.append(fake_x.slow(3.0))
    network = XApiNetwork(base_url=fake.base_url, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(Transient, match="no answer"):
        await network.me(ref(alice))
    assert time.monotonic() - started < 2.0
    await network.close()


async def test_connection_refused_is_transient() -> None:
    with fake_x.serve() as gone:
        url = gone.base_url
    user = fake_x.User("1", "alice")
    network = XApiNetwork(base_url=url, timeout_s=1.0)
    with pytest.raises(Transient):
        await network.me(AccountRef("alice", "1", user.credentials()))
    await network.close()


async def test_no_secret_in_errors_or_logs(
    fake: fake_x.FakeX, x: XApiNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = fake.add_user("alice")
    # A server echoing the token back must not get it into our messages.
    fake.script.append(
        type(fake_x.unauthorized())(401, {"code": 32, "message": f"bad token {alice.access_token}"})
    )
    raised: list[BaseException] = []
    for scripted in (None, fake_x.rate_limited(), fake_x.duplicate(), fake_x.server_error()):
        if scripted is not None:
            fake.script.append(scripted)
        try:
            await x.create_post(ref(alice), "secret test")
        except NetworkError as exc:
            raised.append(exc)
    fake.script.append(fake_x.slow(3.0))
    quick = XApiNetwork(base_url=fake.base_url, timeout_s=0.2)
    with pytest.raises(Transient) as slow_error:
        await quick.me(ref(alice))
    await quick.close()
    raised.append(slow_error.value)
    assert len(raised) == 5
    texts = [repr(e) + str(e) for e in raised] + [r.getMessage() for r in caplog.records]
    texts += [repr(e.__cause__) + repr(e.__context__) for e in raised]
    for text in texts:
        assert "OAuth " not in text
        for secret in secrets_of(alice):
            assert secret not in text
