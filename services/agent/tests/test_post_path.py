"""A post's memory calls, counted on the memory server: a recall and a create, nothing else."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2 as mpb
from puppet.memory.v1 import memory_service_pb2_grpc as mrpc
from puppet_agent.testing import persona, persona_dict, struct
from puppet_runtime.testing import status_of

AGENT = "test-grok-agent"
METHODS = ("GetPersona", "RecallMemories", "CreateMemory", "UpdatePersonaState")


def memory_calls() -> dict[str, float]:
    """Memory RPCs handled so far in this process (the suite's servers run in it), by method."""
    return {
        name: REGISTRY.get_sample_value(
            "puppet_grpc_server_handled_total",
            {
                "service": "memory.puppet",
                "method": f"puppet.memory.v1.MemoryService/{name}",
                "code": "OK",
            },
        )
        or 0.0
        for name in METHODS
    }


def since(before: dict[str, float]) -> dict[str, int]:
    after = memory_calls()
    return {name: int(after[name] - before[name]) for name in METHODS if after[name] > before[name]}


async def started(suite_factory: Any, **settings: Any) -> Any:
    suite = await suite_factory(**settings)
    await suite.agent.CreateAgent(pb.CreateAgentRequest(persona=persona(AGENT)))
    return suite


async def too_soon(suite: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await suite.agent.CreatePost(pb.CreatePostRequest(agent_id=AGENT))
    code, info, _ = status_of(caught.value)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info is not None
    assert info.reason == "POST_TOO_SOON"


async def test_a_post_recalls_and_creates_and_a_cached_too_soon_calls_nothing(
    suite_factory: Any,
) -> None:
    suite = await started(suite_factory, state_cache_s=60)
    before = memory_calls()
    made = await suite.agent.CreatePost(pb.CreatePostRequest(agent_id=AGENT, force=True))
    assert since(before) == {"RecallMemories": 1, "CreateMemory": 1}

    before = memory_calls()
    await too_soon(suite)  # refused on the state cached by the recall and the post
    assert since(before) == {}

    async with grpc.aio.insecure_channel(suite.settings.memory_addr) as channel:
        got = await mrpc.MemoryServiceStub(channel).GetPersona(
            mpb.GetPersonaRequest(name=f"agents/{AGENT}")
        )
    assert got.persona.HasField("last_post_time")  # set with the post's memory
    detail = await suite.agent.GetAgent(pb.GetAgentRequest(agent_id=AGENT))
    assert detail.last_post_time.number_value == pytest.approx(
        got.persona.last_post_time.ToMilliseconds(), abs=1
    )
    assert made.content


async def test_without_a_cache_too_soon_is_refused_on_the_recalled_state(
    suite_factory: Any,
) -> None:
    suite = await started(suite_factory, state_cache_s=0)
    await suite.agent.CreatePost(pb.CreatePostRequest(agent_id=AGENT))
    before = memory_calls()
    await too_soon(suite)
    assert since(before) == {"RecallMemories": 1}  # the state came with the recall
    before = memory_calls()
    await suite.agent.CreatePost(pb.CreatePostRequest(agent_id=AGENT, force=True, topic="tea"))
    assert since(before) == {"RecallMemories": 1, "CreateMemory": 1}


async def test_a_composition_may_mention_the_other_personas_but_itself(
    suite_factory: Any,
) -> None:
    suite = await started(suite_factory)
    raw = persona_dict(AGENT)
    for agent_id in ("other-one", "other_two"):
        changed = struct({**raw, "id": agent_id, "name": agent_id})
        await suite.agent.CreateAgent(pb.CreateAgentRequest(persona=changed))
    got = await suite.agent.GetAgentContext(pb.GetAgentContextRequest(agent_id="other-one"))
    rule = next(line for line in got.context.splitlines() if "Mention nobody" in line)
    assert "@test_grok_agent," in rule  # handles: [^A-Za-z0-9_] as "_", at most 15 long
    assert "@other_two" in rule
    assert "@other_one" not in rule
