"""AgentService through the wire: posts, replies, context, mood, memories, events, post lists."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from puppet.agent.v1 import agent_pb2 as a
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as spb
from puppet_agent.testing import fails, persona, sent_post_id

Suite = Any


@pytest.fixture
async def grok(suite: Suite) -> Suite:
    await suite.agent.CreateAgent(pb.CreateAgentRequest(persona=persona()))
    return suite


async def test_post_then_too_soon_then_forced(grok: Suite) -> None:
    first = await grok.agent.CreatePost(pb.CreatePostRequest(agent_id="test-grok-agent"))
    assert first.agent_id == "test-grok-agent"
    assert first.content
    assert first.tweet_id.WhichOneof("kind") == "string_value"
    info = await fails(
        grok.agent.CreatePost(pb.CreatePostRequest(agent_id="test-grok-agent")),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "POST_TOO_SOON",
    )
    assert int(info.metadata["last_post_time"]) > 0
    assert info.metadata["retry_time"].endswith("Z")
    forced = await grok.agent.CreatePost(
        pb.CreatePostRequest(agent_id="test-grok-agent", force=True, topic="tea")
    )
    assert forced.tweet_id.string_value != first.tweet_id.string_value
    detail = await grok.agent.GetAgent(pb.GetAgentRequest(agent_id="test-grok-agent"))
    assert detail.last_post_time.number_value > 0
    timeline = await grok.social.ListPosts(spb.ListPostsRequest(parent="accounts/test-grok-agent"))
    assert [p.text for p in timeline.posts] == [forced.content, first.content]


async def test_post_request_id_is_harmless_to_repeat(grok: Suite) -> None:
    req = pb.CreatePostRequest(agent_id="test-grok-agent", request_id="slot-1")
    first = await grok.agent.CreatePost(req)
    again = await grok.agent.CreatePost(req)
    assert first == again
    timeline = await grok.social.ListPosts(spb.ListPostsRequest(parent="accounts/test-grok-agent"))
    assert len(timeline.posts) == 1


async def test_posts_are_listed_with_delivery_and_in_tweet_history(grok: Suite) -> None:
    made = await grok.agent.CreatePost(pb.CreatePostRequest(agent_id="test-grok-agent"))
    posts = await grok.agent.ListAgentPosts(pb.ListAgentPostsRequest(agent_id="test-grok-agent"))
    [post] = posts.posts
    assert (post.kind, post.delivery, post.trigger) == (
        a.POST_KIND_POST,
        a.POST_DELIVERY_SENT,
        "api",
    )
    assert post.social_post.endswith(made.tweet_id.string_value)
    assert post.outbox_item.startswith("accounts/test-grok-agent/outbox/")
    memory = await grok.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="test-grok-agent"))
    [entry] = memory.tweet_history
    assert (entry.content, entry.is_reply) == (made.content, False)
    assert entry.id.string_value == made.tweet_id.string_value
    none = await grok.agent.ListAgentPosts(
        pb.ListAgentPostsRequest(agent_id="test-grok-agent", delivery=a.POST_DELIVERY_FAILED)
    )
    assert list(none.posts) == []


async def test_reply_reads_the_target_and_answers_in_the_thread(grok: Suite) -> None:
    operator = await grok.social.CreateAccount(
        spb.CreateAccountRequest(
            account_id="operator",
            account=s.Account(network=s.NETWORK_SANDBOX, handle="op", operator=True),
        )
    )
    assert operator.account.operator
    said = await grok.social.CreatePost(
        spb.CreatePostRequest(
            parent="accounts/operator", text="what do you think of tea?", request_id="op-1"
        )
    )
    target_id = await sent_post_id(grok, said.item)
    reply = await grok.agent.CreateReply(
        pb.CreateReplyRequest(agent_id="test-grok-agent", tweet_id=target_id)
    )
    assert reply.tweet_id.WhichOneof("kind") == "string_value"
    got = await grok.social.GetPost(
        spb.GetPostRequest(name=f"accounts/-/posts/{reply.tweet_id.string_value}")
    )
    assert got.post.in_reply_to.endswith(f"/posts/{target_id}")
    posts = await grok.agent.ListAgentPosts(pb.ListAgentPostsRequest(agent_id="test-grok-agent"))
    assert posts.posts[0].kind == a.POST_KIND_REPLY
    rels = await grok.agent.GetAgentRelationships(
        pb.GetAgentRelationshipsRequest(agent_id="test-grok-agent")
    )
    assert "op" in rels.relationships or "operator" in rels.relationships


async def test_reply_needs_tweet_id(grok: Suite) -> None:
    await fails(
        grok.agent.CreateReply(pb.CreateReplyRequest(agent_id="test-grok-agent")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "tweet_id",
    )


async def test_context_is_the_llm_system_prompt(grok: Suite) -> None:
    got = await grok.agent.GetAgentContext(pb.GetAgentContextRequest(agent_id="test-grok-agent"))
    assert got.has_custom_prompt
    assert got.context


async def test_mood_shifts_clamp_and_repeat_with_request_id(grok: Suite) -> None:
    req = pb.ShiftAgentMoodRequest(
        agent_id="test-grok-agent", valence_shift=0.3, arousal_shift=5, request_id="m1"
    )
    first = await grok.agent.ShiftAgentMood(req)
    assert first.agent == "test-grok-agent"
    assert first.mood.valence == pytest.approx(0.3)
    assert first.mood.arousal == pytest.approx(1.0)
    assert first.mood.dominance == pytest.approx(0.5)
    again = await grok.agent.ShiftAgentMood(req)
    assert again == first
    await fails(
        grok.agent.ShiftAgentMood(
            pb.ShiftAgentMoodRequest(agent_id="test-grok-agent", valence_shift=float("nan"))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "valence_shift",
    )


async def test_memories_are_stored_returned_and_shown(grok: Suite) -> None:
    zero = await grok.agent.CreateMemory(
        pb.CreateMemoryRequest(
            agent_id="test-grok-agent", content="likes tea", type="event", importance=0
        )
    )
    assert (zero.memory.type, zero.memory.importance) == ("event", 0)
    odd = await grok.agent.CreateMemory(
        pb.CreateMemoryRequest(agent_id="test-grok-agent", content="a dream", type="dream")
    )
    assert (odd.memory.type, odd.memory.importance) == ("dream", 0.5)
    plain = await grok.agent.CreateMemory(
        pb.CreateMemoryRequest(agent_id="test-grok-agent", content="general thing")
    )
    assert plain.memory.type == "general"
    memory = await grok.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="test-grok-agent"))
    assert [m.content for m in memory.recent_events] == ["likes tea"]
    assert {m.content for m in memory.long_term_memories} == {"a dream", "general thing"}
    await fails(
        grok.agent.CreateMemory(pb.CreateMemoryRequest(agent_id="test-grok-agent")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "content",
    )
    await fails(
        grok.agent.CreateMemory(
            pb.CreateMemoryRequest(agent_id="test-grok-agent", content="x", importance=2)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "importance",
    )


async def until_events(suite: Suite, count: int) -> list[a.Event]:
    for _ in range(200):
        listed = await suite.agent.ListEvents(pb.ListEventsRequest())
        if len(listed.events) >= count:
            return list(listed.events)
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(listed.events)} events processed")


def value(data: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(data, out)
    return out


async def test_mood_shift_event_moves_mood_and_remembers(grok: Suite) -> None:
    made = await grok.agent.CreateEvent(
        pb.CreateEventRequest(
            type="mood_shift",
            data=value(
                {
                    "name": "creative surge",
                    "description": "Experiencing creative surge",
                    "valenceShift": 0.3,
                    "arousalShift": 0.4,
                    "dominanceShift": 0.3,
                }
            ),
        )
    )
    assert not made.scheduled
    assert not made.event.HasField("execute_after")
    [event] = await until_events(grok, 1)
    assert (event.id, event.type) == (made.event.id, "mood_shift")
    assert list(event.target_agent_ids) == []
    detail = await grok.agent.GetAgent(pb.GetAgentRequest(agent_id="test-grok-agent"))
    assert detail.current_mood.valence == pytest.approx(0.3)
    memory = await grok.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="test-grok-agent"))
    assert "Experiencing creative surge" in [m.content for m in memory.recent_events]


async def test_delayed_event_fires_on_its_own(grok: Suite) -> None:
    made = await grok.agent.CreateEvent(
        pb.CreateEventRequest(
            type="custom_thing",
            data=value({"x": 1}),
            delay_ms=200,
            priority="high",
            target_agent_ids=["test-grok-agent"],
        )
    )
    assert made.scheduled
    assert made.event.HasField("execute_after")
    assert (await grok.agent.ListEvents(pb.ListEventsRequest())).events == []
    [event] = await until_events(grok, 1)
    assert event.type == "custom_thing"
    legacy = await grok.agent.LegacyListEvents(pb.LegacyListEventsRequest())
    [item] = json.loads(legacy.body.data)
    assert set(item) == {"id", "type", "data", "timestamp", "processedAt", "targetAgentIds"}
    assert item["data"] == {"x": 1}


async def test_events_page_newest_first_oldest_first_within_a_page(grok: Suite) -> None:
    for i in range(3):
        await grok.agent.CreateEvent(pb.CreateEventRequest(type=f"e{i}", data=value(i + 1)))
    await until_events(grok, 3)
    newest = await grok.agent.ListEvents(pb.ListEventsRequest(page_size=2))
    assert [e.type for e in newest.events] == ["e1", "e2"]
    older = await grok.agent.ListEvents(pb.ListEventsRequest(page_token=newest.next_page_token))
    assert [e.type for e in older.events] == ["e0"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateEventRequest(data=value({"a": 1})), "type"),
        (pb.CreateEventRequest(type="news"), "data"),
        (pb.CreateEventRequest(type="news", data=value(0)), "data"),
        (pb.CreateEventRequest(type="news", data=value({"a": 1}), priority="urgent"), "priority"),
        (pb.CreateEventRequest(type="x" * 65, data=value(1)), "type"),
    ],
)
async def test_bad_events_are_refused(suite: Suite, request_: Any, field: str) -> None:
    await fails(
        suite.agent.CreateEvent(request_), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", field
    )
