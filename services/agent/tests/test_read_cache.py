"""Reads through the persona state cache: own writes at once, others' within its age."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2 as mpb
from puppet.memory.v1 import memory_service_pb2_grpc as mrpc
from puppet_agent.testing import persona_dict, struct

Suite = Any


async def create_many(suite: Suite, n: int) -> list[str]:
    raw = persona_dict("coby-agent")
    ids = [f"cache-{i:02d}" for i in range(n)]
    for agent_id in ids:
        persona = struct({**raw, "id": agent_id, "name": f"Cache {agent_id}"})
        await suite.agent.CreateAgent(pb.CreateAgentRequest(persona=persona))
    return ids


async def test_a_long_listing_shows_this_replicas_mood_shift_at_once(
    suite_factory: Any,
) -> None:
    suite = await suite_factory(state_cache_s=60)
    ids = await create_many(suite, 12)  # more than 8 uncached: one ListPersonas page
    first = await suite.agent.ListAgents(pb.ListAgentsRequest())
    assert [a.id for a in first.agents] == ids
    assert {a.mood.valence for a in first.agents} == {0.0}

    await suite.agent.ShiftAgentMood(pb.ShiftAgentMoodRequest(agent_id=ids[3], valence_shift=0.4))

    listed = await suite.agent.ListAgents(pb.ListAgentsRequest())
    moods = {a.id: a.mood.valence for a in listed.agents}
    assert moods[ids[3]] == pytest.approx(0.4)
    assert all(moods[i] == 0.0 for i in ids if i != ids[3])
    legacy = await suite.agent.LegacyListAgents(pb.LegacyListAgentsRequest())
    by_id = {item["id"]: item for item in json.loads(legacy.body.data)}
    assert by_id[ids[3]]["mood"]["valence"] == pytest.approx(0.4)
    detail = await suite.agent.GetAgent(pb.GetAgentRequest(agent_id=ids[3]))
    assert detail.current_mood.valence == pytest.approx(0.4)


async def test_another_writers_change_shows_within_the_cache_age(suite_factory: Any) -> None:
    suite = await suite_factory(state_cache_s=0.3)
    (agent_id,) = await create_many(suite, 1)
    before = await suite.agent.GetAgent(pb.GetAgentRequest(agent_id=agent_id))
    assert before.current_mood.valence == 0.0

    async with grpc.aio.insecure_channel(suite.settings.memory_addr) as channel:
        await mrpc.MemoryServiceStub(channel).ShiftMood(
            mpb.ShiftMoodRequest(name=f"agents/{agent_id}", valence_delta=-0.5)
        )
    await asyncio.sleep(0.35)

    after = await suite.agent.GetAgent(pb.GetAgentRequest(agent_id=agent_id))
    assert after.current_mood.valence == pytest.approx(-0.5)
    listed = await suite.agent.ListAgents(pb.ListAgentsRequest())
    assert listed.agents[0].mood.valence == pytest.approx(-0.5)
