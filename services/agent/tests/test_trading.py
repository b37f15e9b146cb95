"""Trading personas: decisions go to chain (a fake chain server), announcements from receipts."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from puppet.agent.v1 import agent_pb2 as a
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as cpb
from puppet.chain.v1 import chain_service_pb2_grpc as chain_rpc
from puppet_agent import trading
from puppet_agent.testing import SLOW_POSTS, persona_dict, struct
from puppet_runtime.testing import serve_servicer

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def signature(n: int) -> str:
    """A base58 string of a transaction signature's length."""
    return "4" * 87 + "123456789"[n % 9]


class FakeChain(chain_rpc.ChainServiceServicer):
    """A chain server with one wallet per persona whose swaps confirm at once; records swaps."""

    def __init__(self) -> None:
        self.swaps: list[cpb.CreateSwapRequest] = []

    async def ListWallets(  # noqa: N802
        self, request: Any, context: Any
    ) -> cpb.ListWalletsResponse:
        agent = request.agent.removeprefix("agents/")
        return cpb.ListWalletsResponse(
            wallets=[c.Wallet(name=f"wallets/{agent}", agent=request.agent, address="Addr")]
        )

    async def CreateSwap(  # noqa: N802
        self, request: Any, context: Any
    ) -> cpb.CreateSwapResponse:
        self.swaps.append(request)
        n = len(self.swaps)
        return cpb.CreateSwapResponse(
            action=c.Action(
                name=f"{request.parent}/actions/{n}",
                request_id=request.request_id,
                state=c.ACTION_STATE_CONFIRMED,
                receipt=f"{request.parent}/receipts/{n}",
                signature=signature(n),
            )
        )

    async def GetReceipt(  # noqa: N802
        self, request: Any, context: Any
    ) -> cpb.GetReceiptResponse:
        stamp = timestamp_pb2.Timestamp()
        stamp.GetCurrentTime()
        swap = self.swaps[int(request.name.rsplit("/", 1)[-1]) - 1].swap
        return cpb.GetReceiptResponse(
            receipt=c.Receipt(
                name=request.name,
                signature=signature(int(request.name.rsplit("/", 1)[-1])),
                confirm_time=stamp,
                amount_in=c.TokenAmount(
                    mint=trading.SOL_MINT, symbol="SOL", amount=swap.amount, decimals=9
                ),
                amount_out=c.TokenAmount(mint=USDC, symbol="USDC", amount=1_500_000, decimals=6),
                realized_price=150.0,
            )
        )


def trader(agent_id: str) -> struct_pb2.Struct:
    raw = persona_dict(id=agent_id, post_frequency=SLOW_POSTS)
    raw["behavior"]["trading_behavior"]["trading_frequency"] = {
        "min_hours_between_trades": 0,
        "random_probability": 1.0,
    }
    return struct(raw)


def test_plan_reads_the_legacy_caps() -> None:
    raw = persona_dict()
    plan = trading.plan(raw)
    assert plan is not None
    assert plan.output_mints == (USDC,)
    assert plan.max_trade_sol == 0.05
    assert plan.max_daily_trades == 2
    coby = persona_dict("coby-agent")
    assert trading.plan(coby) is None
    assert trading.decimal(1_500_000, 6) == "1.5"


async def test_trades_go_to_chain_and_are_announced_from_receipts(suite_factory: Any) -> None:
    chain = FakeChain()  # type: ignore[abstract]  # stubs mark every RPC abstract
    async with serve_servicer(
        lambda server: chain_rpc.add_ChainServiceServicer_to_server(chain, server)
    ) as port:
        suite = await suite_factory(
            run_lives=True,
            chain_addr=f"127.0.0.1:{port}",
            trade_check_interval_s=0.2,
            llm_script=["rotated some sol into usdc today", "more usdc, steady hands"],
        )
        await suite.agent.CreateAgent(pb.CreateAgentRequest(persona=trader("trader")))

        async def announced() -> list[a.AgentPost]:
            got = await suite.agent.ListAgentPosts(pb.ListAgentPostsRequest(agent_id="trader"))
            posts = [p for p in got.posts if p.kind == a.POST_KIND_TRADE_ANNOUNCEMENT]
            return posts if len(posts) >= 2 else []

        for _ in range(200):
            if await announced():
                break
            await asyncio.sleep(0.05)
        posts = await announced()
        assert {p.trigger for p in posts} == {"trade"}
        await asyncio.sleep(0.6)  # max_daily_trades is 2 for this persona
    assert len(chain.swaps) == 2
    for swap in chain.swaps:
        assert swap.requester == "agents/trader"
        assert swap.swap.input_mint == trading.SOL_MINT
        assert 0 < swap.swap.amount <= 0.05 * trading.LAMPORTS_PER_SOL
