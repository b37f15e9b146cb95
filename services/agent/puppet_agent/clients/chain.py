"""ChainService client (optional): wallets, swaps, actions and receipts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from puppet.chain.v1 import chain_pb2
from puppet.chain.v1 import chain_service_pb2 as chain_pb

from puppet_agent.clients.base import calling

if TYPE_CHECKING:
    from puppet.chain.v1.chain_service_pb2_grpc import ChainServiceAsyncStub


@dataclass
class ChainClient:
    """ChainService (optional): wallets and trades. Only the runner's trading path uses it."""

    stub: ChainServiceAsyncStub

    async def wallet(self, agent_id: str) -> chain_pb2.Wallet | None:
        request = chain_pb.ListWalletsRequest(agent=f"agents/{agent_id}", page_size=1)
        with calling("chain", agent_id):
            wallets = (await self.stub.ListWallets(request)).wallets
        return wallets[0] if wallets else None

    async def swap(
        self, agent_id: str, wallet: str, swap: chain_pb2.Swap, memo: str, request_id: str
    ) -> chain_pb2.Action:
        request = chain_pb.CreateSwapRequest(
            parent=wallet,
            swap=swap,
            requester=f"agents/{agent_id}",
            memo=memo[:500],
            request_id=request_id,
        )
        with calling("chain", agent_id):
            return (await self.stub.CreateSwap(request)).action

    async def action(self, name: str) -> chain_pb2.Action:
        with calling("chain"):
            return (await self.stub.GetAction(chain_pb.GetActionRequest(name=name))).action

    async def receipt(self, name: str) -> chain_pb2.Receipt:
        with calling("chain"):
            return (await self.stub.GetReceipt(chain_pb.GetReceiptRequest(name=name))).receipt
