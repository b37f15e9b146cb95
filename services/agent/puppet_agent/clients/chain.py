"""ChainService client (optional): wallets, swaps, actions and receipts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2
from puppet.chain.v1 import chain_pb2
from puppet.chain.v1 import chain_service_pb2 as chain_pb
from puppet_runtime.testing import status_of

from puppet_agent import errors
from puppet_agent.clients.base import TRANSIENT, calling

if TYPE_CHECKING:
    from puppet.chain.v1.chain_service_pb2_grpc import ChainServiceAsyncStub


@dataclass
class ChainClient:
    """ChainService (optional): wallets and trades. Only the runner's trading path uses it."""

    stub: ChainServiceAsyncStub
    admin_token: str | None = None
    """Chain's admin token (ImportWallet, UpdatePolicy); None sends none."""

    def _admin(self) -> tuple[tuple[str, str], ...]:
        if not self.admin_token:
            return ()
        return (("authorization", f"Bearer {self.admin_token}"),)

    async def import_wallet(
        self, agent_id: str, wallet_id: str, secret: str, request_id: str
    ) -> chain_pb2.Wallet:
        """ImportWallet: the secret goes to chain only (never logged or kept here)."""
        request = chain_pb.ImportWalletRequest(
            wallet_id=wallet_id, agent=f"agents/{agent_id}", secret=secret, request_id=request_id
        )
        with _setup("ImportWallet"):
            response = await self.stub.ImportWallet(request, metadata=self._admin())
        return response.wallet

    async def create_wallet(
        self, agent_id: str, wallet_id: str, request_id: str
    ) -> chain_pb2.Wallet:
        request = chain_pb.CreateWalletRequest(
            wallet_id=wallet_id, agent=f"agents/{agent_id}", request_id=request_id
        )
        with _setup("CreateWallet"):
            return (await self.stub.CreateWallet(request)).wallet

    async def policy(self, name: str) -> chain_pb2.Policy:
        with _setup("GetPolicy"):
            return (await self.stub.GetPolicy(chain_pb.GetPolicyRequest(name=name))).policy

    async def update_policy(
        self, policy: chain_pb2.Policy, fields: Sequence[str]
    ) -> chain_pb2.Policy:
        request = chain_pb.UpdatePolicyRequest(
            policy=policy, update_mask=field_mask_pb2.FieldMask(paths=list(fields))
        )
        with _setup("UpdatePolicy"):
            return (await self.stub.UpdatePolicy(request, metadata=self._admin())).policy

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


@contextmanager
def _setup(op: str) -> Iterator[None]:
    """Wallet setup failures as ours: a refused key is the persona file's fault; chain being
    down is UNAVAILABLE; any other refusal (e.g. a missing admin token) is CHAIN_REFUSED."""
    try:
        yield
    except grpc.aio.AioRpcError as err:
        code, info, _ = status_of(err)
        reason = info.reason if info is not None else code.name
        if code in TRANSIENT:
            raise errors.unavailable("chain") from err
        if reason == "SECRET_INVALID":
            raise errors.persona_invalid(
                [("solana_integration.private_key", "chain refused the key")]
            ) from None
        raise errors.chain_refused(op, reason) from err
