"""Test kit shared by the contract tests: the harness type and request builders."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import field_mask_pb2
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_chain.localnet import Embedded
from puppet_chain.server import Chain, build, compose
from puppet_chain.settings import ChainSettings
from puppet_chain.store import ChainStore
from puppet_runtime import started_server
from pydantic import SecretStr
from solders.keypair import Keypair
from solders.pubkey import Pubkey

if TYPE_CHECKING:
    from puppet.chain.v1.chain_service_pb2_grpc import ChainServiceAsyncStub

TOKEN = "admin-token"
ADMIN = (("authorization", f"Bearer {TOKEN}"),)


@dataclass
class Harness:
    """A real ChainService on port 0 over an in-process local Solana and Jupiter."""

    stub: ChainServiceAsyncStub
    chain: Chain
    settings: ChainSettings

    @property
    def local(self) -> Embedded:
        assert self.chain.local is not None
        return self.chain.local


SOL = 1_000_000_000
BOB = Keypair().pubkey()
WSOL = "So11111111111111111111111111111111111111112"


async def funded(h: Harness, wallet_id: str = "w1", lamports: int = 5 * SOL) -> c.Wallet:
    made = await h.stub.CreateWallet(pb.CreateWalletRequest(wallet_id=wallet_id, agent="agents/a"))
    await h.stub.RequestAirdrop(
        pb.RequestAirdropRequest(wallet=made.wallet.name, lamports=lamports)
    )
    return made.wallet


async def set_policy(h: Harness, wallet_id: str = "w1", **fields: object) -> c.Policy:
    policy = c.Policy(name=f"wallets/{wallet_id}/policy", **fields)  # type: ignore[arg-type]
    mask = field_mask_pb2.FieldMask(paths=list(fields))
    resp = await h.stub.UpdatePolicy(
        pb.UpdatePolicyRequest(policy=policy, update_mask=mask), metadata=ADMIN
    )
    return resp.policy


def transfer(amount: int, rid: str, mint: str = "", to: Pubkey = BOB) -> pb.CreateTransferRequest:
    return pb.CreateTransferRequest(
        parent="wallets/w1",
        transfer=c.Transfer(recipient=str(to), mint=mint, amount=amount),
        requester="agents/a",
        request_id=rid,
    )


@contextlib.asynccontextmanager
async def serve(
    data_dir: Path, store: ChainStore | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    """A real ChainService on port 0 (local Solana and Jupiter in-process) and a stub to it."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "shutdown_grace_s": 0,
        "drain_s": 0,
        "data_dir": data_dir,
        "admin_token": SecretStr(TOKEN),
    }
    settings = ChainSettings(**(values | overrides))
    chain = compose(settings, store=store)
    async with (
        started_server(build(settings, chain), settings) as srv,
        grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        yield Harness(rpc.ChainServiceStub(channel), chain, settings)
