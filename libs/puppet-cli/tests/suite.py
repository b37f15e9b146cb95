"""The agent suite (puppet_agent.testing) for the CLI: every address, shipped personas by name."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import struct_pb2
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from puppet.social.v1 import social_service_pb2_grpc as social_rpc
from puppet_agent import testing

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Suite:
    """Addresses for the CLI and stubs for arranging and checking."""

    addresses: dict[str, str]
    agent: agent_rpc.AgentServiceAsyncStub
    social: social_rpc.SocialServiceAsyncStub

    async def create_persona(self, file: str) -> None:
        raw = json.loads((REPO / "config" / "agents" / f"{file}.json").read_text())
        persona = struct_pb2.Struct()
        persona.update(raw)
        await self.agent.CreateAgent(pb.CreateAgentRequest(persona=persona))


@asynccontextmanager
async def running_suite(tmp_path: Path, chain: str) -> AsyncIterator[Suite]:
    """Memory, llm, social and agent on port 0; `chain` is the address shown for chain."""
    async with testing.running_suite(tmp_path) as started:
        yield Suite({**started.addresses, "chain": chain}, started.agent, started.social)
