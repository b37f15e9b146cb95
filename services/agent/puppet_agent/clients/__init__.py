"""Typed async wrappers over memory, llm, social and chain, with their errors mapped to ours."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from puppet.chain.v1 import chain_service_pb2 as chain_pb
from puppet.chain.v1 import chain_service_pb2_grpc as chain_rpc
from puppet.llm.v1 import llm_service_pb2
from puppet.llm.v1 import llm_service_pb2_grpc as llm_rpc
from puppet.memory.v1 import memory_service_pb2
from puppet.memory.v1 import memory_service_pb2_grpc as memory_rpc
from puppet.social.v1 import social_pb2, social_service_pb2
from puppet.social.v1 import social_service_pb2_grpc as social_rpc
from puppet_runtime import open_channel

from puppet_agent.clients.base import calling, handle_for, translate
from puppet_agent.clients.chain import ChainClient
from puppet_agent.clients.llm import LlmClient
from puppet_agent.clients.memory import MemoryClient
from puppet_agent.clients.social import SocialClient


@dataclass
class Clients:
    """Every dependency of the orchestrator, over channels opened once."""

    memory: MemoryClient
    llm: LlmClient
    social: SocialClient
    chain: ChainClient | None
    channels: tuple[grpc.aio.Channel, ...] = ()

    @classmethod
    def open(
        cls,
        *,
        memory_addr: str,
        llm_addr: str,
        social_addr: str,
        chain_addr: str | None,
        chain_admin_token: str | None = None,
        network: int = social_pb2.NETWORK_SANDBOX,
        timeout_s: float = 10.0,
        state_ttl_s: float = 0.0,
    ) -> Clients:
        memory = open_channel(
            memory_addr,
            memory_service_pb2.DESCRIPTOR.services_by_name["MemoryService"],
            timeout_s=timeout_s,
        )
        llm = open_channel(
            llm_addr,
            llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"],
            timeout_s=max(timeout_s, 60.0),
        )
        social = open_channel(
            social_addr,
            social_service_pb2.DESCRIPTOR.services_by_name["SocialService"],
            timeout_s=timeout_s,
        )
        channels = [memory, llm, social]
        chain: ChainClient | None = None
        if chain_addr:
            chain_channel = open_channel(
                chain_addr,
                chain_pb.DESCRIPTOR.services_by_name["ChainService"],
                timeout_s=timeout_s,
            )
            channels.append(chain_channel)
            chain = ChainClient(chain_rpc.ChainServiceStub(chain_channel), chain_admin_token)
        return cls(
            MemoryClient(memory_rpc.MemoryServiceStub(memory), state_ttl_s),
            LlmClient(llm_rpc.LlmServiceStub(llm)),
            SocialClient(social_rpc.SocialServiceStub(social), network),
            chain,
            tuple(channels),
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


__all__ = [
    "ChainClient",
    "Clients",
    "LlmClient",
    "MemoryClient",
    "SocialClient",
    "calling",
    "handle_for",
    "translate",
]
