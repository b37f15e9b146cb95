"""Chain service benchmark: transfer latency on the local Solana through gRPC, policy speed.

Runs `python -m puppet_chain` as a subprocess in its embedded mode (SQLite store, LiteSVM behind
the local JSON-RPC endpoint, local Jupiter) and drives it over a real gRPC channel. A transfer is
policy + sign + simulate + send + confirm + receipt, one call at a time. `policy_decisions_per_s`
runs the pure policy engine in-process with every rule configured. The last line printed is one
JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_chain.policy import WSOL, Proposal, Rules, Usage, decide
from puppet_runtime.testing import free_port, wait_serving
from solders.keypair import Keypair

if TYPE_CHECKING:
    from puppet.chain.v1.chain_service_pb2_grpc import ChainServiceAsyncStub

SOL = 1_000_000_000
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def policy_rate(n: int) -> float:
    recipient = str(Keypair().pubkey())
    rules = Rules(
        enabled=True,
        max_trade_lamports=10 * SOL,
        max_trade_usd=10_000.0,
        max_daily_lamports=100 * SOL,
        max_daily_usd=100_000.0,
        max_daily_actions=1_000,
        min_reserve_lamports=SOL // 100,
        allowed_mints=(USDC,),
        denied_mints=("x",),
        allowed_recipients=(recipient,),
        approval_threshold_lamports=50 * SOL,
        approval_threshold_usd=5_000.0,
        min_seconds_between_actions=1,
    )
    proposal = Proposal(
        mints=(WSOL,),
        recipient=recipient,
        value_lamports=SOL // 10,
        value_usd=15.0,
        sol_out_lamports=SOL // 10,
    )
    usage = Usage(
        now=1e9,
        sol_balance=5 * SOL,
        spent_lamports=SOL,
        spent_usd=150.0,
        actions_today=10,
        last_action_time=1e9 - 60,
    )
    started = time.perf_counter()
    for _ in range(n):
        decide(rules, proposal, usage)
    return n / (time.perf_counter() - started)


async def transfers(stub: ChainServiceAsyncStub, n: int) -> list[float]:
    recipient = str(Keypair().pubkey())
    await stub.CreateWallet(pb.CreateWalletRequest(wallet_id="bench", agent="agents/bench"))
    await stub.RequestAirdrop(pb.RequestAirdropRequest(wallet="wallets/bench", lamports=10 * SOL))
    policy = c.Policy(
        name="wallets/bench/policy",
        enabled=True,
        allowed_recipients=[recipient],
        max_trade_lamports=SOL,
        max_daily_lamports=100 * SOL,
        simulate_before_send=True,
    )
    mask = field_mask_pb2.FieldMask(
        paths=[
            "enabled",
            "allowed_recipients",
            "max_trade_lamports",
            "max_daily_lamports",
            "simulate_before_send",
        ]
    )
    await stub.UpdatePolicy(pb.UpdatePolicyRequest(policy=policy, update_mask=mask))
    samples: list[float] = []
    for i in range(n + 10):
        request = pb.CreateTransferRequest(
            parent="wallets/bench",
            transfer=c.Transfer(recipient=recipient, amount=SOL // 1000),
            requester="operator",
            request_id=f"bench-{i}",
        )
        started = time.perf_counter()
        action = (await stub.CreateTransfer(request, timeout=10)).action
        elapsed = (time.perf_counter() - started) * 1000
        if action.state != c.ACTION_STATE_CONFIRMED:
            raise RuntimeError(f"transfer {i} ended {c.ActionState.Name(action.state)}")
        if i >= 10:  # the first ones warm caches and connections
            samples.append(elapsed)
    return samples


async def main(n: int, decisions: int) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="bench-chain-"))
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_CHAIN_PORT": str(port),
        "PUPPET_CHAIN_DATA_DIR": str(data),
        "PUPPET_CHAIN_LOG_LEVEL": "WARNING",
    }
    env.pop("PUPPET_CHAIN_RPC_URL", None)
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "puppet_chain", env=env)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_serving(channel, timeout_s=60)
            samples = await transfers(rpc.ChainServiceStub(channel), n)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    return {
        "transfers": n,
        "transfer_p50_ms": round(statistics.median(samples), 2),
        "transfer_p99_ms": round(percentile(samples, 99), 2),
        "policy_decisions_per_s": round(policy_rate(decisions)),
        "server_exit_code": server.returncode,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=300)
    parser.add_argument("--decisions", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.transfers, args.decisions))))
