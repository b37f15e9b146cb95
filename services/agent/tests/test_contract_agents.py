"""AgentService through the wire: personas, status, run state (real memory, llm and social)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from puppet.agent.v1 import agent_pb2 as a
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet_agent.testing import fails, persona_dict, struct

Suite = Any


async def create(suite: Suite, raw: dict[str, Any], request_id: str = "") -> Any:
    return await suite.agent.CreateAgent(
        pb.CreateAgentRequest(persona=struct(raw), request_id=request_id)
    )


async def test_status_counts_personas(suite: Suite) -> None:
    before = await suite.agent.GetStatus(pb.GetStatusRequest())
    assert (before.status, before.agents) == ("online", 0)
    await create(suite, persona_dict("coby-agent"))
    after = await suite.agent.GetStatus(pb.GetStatusRequest())
    assert after.agents == 1
    assert after.uptime >= before.uptime


async def test_create_agent_shows_legacy_detail_with_defaults_and_live_mood(suite: Suite) -> None:
    made = await create(suite, persona_dict("coby-agent"))
    assert (made.id, made.name, made.message) == (
        "coby-agent",
        "Coby",
        "Agent created successfully",
    )
    got = await suite.agent.GetAgent(pb.GetAgentRequest(agent_id="coby-agent"))
    assert got.behavior.post_frequency.min_hours_between_posts == 24
    assert got.behavior.content_preferences.max_thread_length >= 1
    assert got.current_mood == a.Mood(valence=0, arousal=0, dominance=0.5)
    assert got.last_post_time.WhichOneof("kind") == "null_value"
    printed = json_format.MessageToDict(got, always_print_fields_with_no_presence=True)
    assert printed["lastPostTime"] is None
    assert printed["goals"] == []


async def test_initial_memory_snake_case_keys_seed_core_memories(suite: Suite) -> None:
    raw = persona_dict("coby-agent")
    await create(suite, raw)
    memory = await suite.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="coby-agent"))
    assert len(memory.core_memories) == len(raw["initial_memory"]["core_memories"])
    assert {m.type for m in memory.core_memories} == {"core"}
    await create(suite, raw)  # replacing with the same file does not seed twice
    again = await suite.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="coby-agent"))
    assert len(again.core_memories) == len(memory.core_memories)


async def test_seeded_relationships_are_returned(suite: Suite) -> None:
    raw = persona_dict(
        "test-grok-agent",
        initial_memory={
            "relationships": {"coby-agent": {"sentiment": 0.4, "familiarity": 0.5, "trust": 0.3}}
        },
    )
    await create(suite, raw)
    got = await suite.agent.GetAgentRelationships(
        pb.GetAgentRelationshipsRequest(agent_id="test-grok-agent")
    )
    rel = got.relationships["coby-agent"]
    assert rel.target_agent_id == "coby-agent"
    assert rel.sentiment == pytest.approx(0.4)
    assert rel.last_interaction_date.WhichOneof("kind") == "null_value"


async def test_invalid_persona_names_the_field(suite: Suite) -> None:
    raw = persona_dict("coby-agent", behavior={"interaction_patterns": {"like_probability": 3}})
    await fails(
        create(suite, raw),
        grpc.StatusCode.INVALID_ARGUMENT,
        "PERSONA_INVALID",
        "behavior.interaction_patterns.like_probability",
    )
    raw = persona_dict("coby-agent")
    del raw["id"]
    await fails(create(suite, raw), grpc.StatusCode.INVALID_ARGUMENT, "PERSONA_INVALID", "id")
    status = await suite.agent.GetStatus(pb.GetStatusRequest())
    assert status.agents == 0


async def test_secrets_are_not_kept_in_the_stored_copy(suite: Suite) -> None:
    raw = persona_dict("coby-agent")
    raw["solana_integration"]["private_key"] = "do-not-store"
    await create(suite, raw)
    record = await suite.core.fleet.store.get_persona("coby-agent")
    assert record is not None
    assert "do-not-store" not in json.dumps(record.config)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.agent.GetAgent(pb.GetAgentRequest(agent_id="ghost")),
        lambda s: s.agent.GetAgentMemory(pb.GetAgentMemoryRequest(agent_id="ghost")),
        lambda s: s.agent.GetAgentContext(pb.GetAgentContextRequest(agent_id="ghost")),
        lambda s: s.agent.GetAgentRelationships(pb.GetAgentRelationshipsRequest(agent_id="ghost")),
        lambda s: s.agent.CreatePost(pb.CreatePostRequest(agent_id="ghost")),
        lambda s: s.agent.CreateReply(pb.CreateReplyRequest(agent_id="ghost", tweet_id="1")),
        lambda s: s.agent.ShiftAgentMood(pb.ShiftAgentMoodRequest(agent_id="ghost")),
        lambda s: s.agent.CreateMemory(pb.CreateMemoryRequest(agent_id="ghost", content="x")),
        lambda s: s.agent.GetAgentRuntime(pb.GetAgentRuntimeRequest(agent_id="ghost")),
        lambda s: s.agent.ListAgentPosts(pb.ListAgentPostsRequest(agent_id="ghost")),
        lambda s: s.agent.PauseAgent(pb.PauseAgentRequest(agent_id="ghost")),
        lambda s: s.agent.ResumeAgent(pb.ResumeAgentRequest(agent_id="ghost")),
        lambda s: s.agent.ReplaceAgent(
            pb.ReplaceAgentRequest(agent_id="ghost", persona=struct({"id": "ghost"}))
        ),
    ],
)
async def test_unknown_persona_is_not_found_everywhere(suite: Suite, call: Any) -> None:
    info = await fails(call(suite), grpc.StatusCode.NOT_FOUND, "AGENT_NOT_FOUND")
    assert info.metadata["agent_id"] == "ghost"


async def test_bad_agent_id_is_invalid_field(suite: Suite) -> None:
    await fails(
        suite.agent.GetAgent(pb.GetAgentRequest(agent_id="Bad Id")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "agent_id",
    )


async def test_list_agents_pages_in_creation_order_and_legacy_array(suite: Suite) -> None:
    for name in ("test-grok-agent", "coby-agent", "claudia-agent"):
        await create(suite, persona_dict(name))
    first = await suite.agent.ListAgents(pb.ListAgentsRequest(page_size=2))
    assert [x.id for x in first.agents] == ["test-grok-agent", "coby-agent"]
    rest = await suite.agent.ListAgents(pb.ListAgentsRequest(page_token=first.next_page_token))
    assert [x.id for x in rest.agents] == ["claudia-agent"]
    assert rest.next_page_token == ""
    legacy = await suite.agent.LegacyListAgents(pb.LegacyListAgentsRequest())
    assert legacy.body.content_type == "application/json"
    body = json.loads(legacy.body.data)
    assert [x["id"] for x in body] == ["test-grok-agent", "coby-agent", "claudia-agent"]
    assert set(body[0]) == {"id", "name", "description", "lastPostTime", "mood"}
    await fails(
        suite.agent.ListAgents(pb.ListAgentsRequest(page_size=-1)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "page_size",
    )
    await fails(
        suite.agent.ListAgents(pb.ListAgentsRequest(page_token="junk")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "page_token",
    )


async def test_create_agent_request_id_returns_first_result(suite: Suite) -> None:
    first = await create(suite, persona_dict("coby-agent"), request_id="r1")
    again = await create(suite, persona_dict("coby-agent"), request_id="r1")
    assert first == again
    await fails(
        create(suite, persona_dict("claudia-agent"), request_id="r1"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )


async def test_replace_pause_resume_runtime_delete(suite: Suite) -> None:
    await create(suite, persona_dict("coby-agent"))
    replaced = await suite.agent.ReplaceAgent(
        pb.ReplaceAgentRequest(
            agent_id="coby-agent", persona=struct(persona_dict("coby-agent", name="Coby 2"))
        )
    )
    assert (replaced.name, replaced.message) == ("Coby 2", "Agent replaced successfully")
    await fails(
        suite.agent.ReplaceAgent(
            pb.ReplaceAgentRequest(
                agent_id="coby-agent", persona=struct(persona_dict("claudia-agent"))
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "PERSONA_INVALID",
        "id",
    )
    paused = await suite.agent.PauseAgent(pb.PauseAgentRequest(agent_id="coby-agent"))
    assert paused.runtime.state == a.AGENT_STATE_PAUSED
    assert paused.runtime.HasField("pause_time")
    listed = await suite.agent.ListAgentRuntimes(
        pb.ListAgentRuntimesRequest(state=a.AGENT_STATE_PAUSED)
    )
    assert [r.agent for r in listed.runtimes] == ["agents/coby-agent"]
    resumed = await suite.agent.ResumeAgent(pb.ResumeAgentRequest(agent_id="coby-agent"))
    assert resumed.runtime.state == a.AGENT_STATE_RUNNING
    assert not resumed.runtime.HasField("pause_time")
    runtime = await suite.agent.GetAgentRuntime(pb.GetAgentRuntimeRequest(agent_id="coby-agent"))
    assert runtime.runtime.agent == "agents/coby-agent"
    await suite.agent.DeleteAgent(pb.DeleteAgentRequest(agent_id="coby-agent", purge_memory=True))
    await suite.agent.DeleteAgent(pb.DeleteAgentRequest(agent_id="coby-agent"))
    await fails(
        suite.agent.GetAgent(pb.GetAgentRequest(agent_id="coby-agent")),
        grpc.StatusCode.NOT_FOUND,
        "AGENT_NOT_FOUND",
    )


async def test_admin_token_guards_v2_writes(suite_factory: Any) -> None:
    suite = await suite_factory(admin_token="s3cret")
    await create(suite, persona_dict("coby-agent"))
    await fails(
        suite.agent.PauseAgent(pb.PauseAgentRequest(agent_id="coby-agent")),
        grpc.StatusCode.UNAUTHENTICATED,
        "ADMIN_TOKEN_REQUIRED",
    )
    ok = await suite.agent.PauseAgent(
        pb.PauseAgentRequest(agent_id="coby-agent"),
        metadata=(("authorization", "Bearer s3cret"),),
    )
    assert ok.runtime.state == a.AGENT_STATE_PAUSED


async def test_persona_files_load_at_start_and_bad_ones_are_skipped(
    suite_factory: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    folder.mkdir()
    (folder / "coby-agent.json").write_text(json.dumps(persona_dict("coby-agent")))
    (folder / "broken.json").write_text('{"id": "broken", "behavior": {"post_frequency": 7}}')
    suite = await suite_factory(agents_dir=folder)
    listed = await suite.agent.ListAgents(pb.ListAgentsRequest())
    assert [x.id for x in listed.agents] == ["coby-agent"]
