"""RPC failures and timeouts give UNAVAILABLE with nothing half-done; policy rules over gRPC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of
from solders.keypair import Keypair

kit = load_sibling(__file__, "kit")
Harness = Any
SOL, BOB = kit.SOL, kit.BOB


@pytest.mark.parametrize("kind", ["http500", "timeout"])
async def test_rpc_failure_is_unavailable_and_records_nothing(tmp_path: Path, kind: str) -> None:
    # The stalled call must time out, so this harness alone has a short RPC timeout: 2 s, far
    # above what a local call takes even on a loaded machine (0.5 s was seen to fail there).
    async with kit.serve(tmp_path, rpc_timeout_s=2.0) as h:
        await kit.funded(h)
        await kit.set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
        h.local.solana.fail_next(1, kind)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.CreateTransfer(kit.transfer(SOL, "f1"))
        code, info, _ = status_of(caught.value)
        assert code == grpc.StatusCode.UNAVAILABLE
        assert info is not None
        assert info.reason == "RPC_UNAVAILABLE"
        listed = await h.stub.ListActions(pb.ListActionsRequest(parent="wallets/w1"))
        assert list(listed.actions) == []
        assert h.local.solana.balance(BOB) == 0
        retried = (await h.stub.CreateTransfer(kit.transfer(SOL, "f1"))).action
        assert retried.state == c.ACTION_STATE_CONFIRMED
        assert h.local.solana.balance(BOB) == SOL


async def test_jupiter_failure_is_unavailable(harness: Harness) -> None:
    h = harness
    h.local.jupiter.fail_next(1, "http500")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.GetQuote(
            pb.GetQuoteRequest(input_mint=kit.WSOL, output_mint=str(h.local.usdc_mint), amount=9)
        )
    code, info, _ = status_of(caught.value)
    assert (code, info.reason if info else "") == (
        grpc.StatusCode.UNAVAILABLE,
        "JUPITER_UNAVAILABLE",
    )


async def test_daily_caps_count_earlier_actions(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(
        h, enabled=True, allowed_recipients=[str(BOB)], max_daily_lamports=SOL, max_daily_actions=2
    )
    first = (await h.stub.CreateTransfer(kit.transfer(SOL * 6 // 10, "d1"))).action
    assert first.state == c.ACTION_STATE_CONFIRMED
    second = (await h.stub.CreateTransfer(kit.transfer(SOL * 6 // 10, "d2"))).action
    assert second.state == c.ACTION_STATE_DENIED
    assert [r.rule for r in second.decision.reasons] == [c.POLICY_RULE_DAILY_CAP]
    third = (await h.stub.CreateTransfer(kit.transfer(SOL // 10, "d3"))).action
    assert third.state == c.ACTION_STATE_CONFIRMED
    fourth = (await h.stub.CreateTransfer(kit.transfer(1, "d4"))).action
    assert [r.rule for r in fourth.decision.reasons] == [c.POLICY_RULE_DAILY_CAP]


@pytest.mark.parametrize(
    ("policy", "amount", "rule"),
    [
        ({"max_trade_lamports": SOL}, 2 * SOL, c.POLICY_RULE_TRADE_CAP),
        ({"min_reserve_lamports": 4 * SOL}, 2 * SOL, c.POLICY_RULE_MIN_RESERVE),
        ({}, 50 * SOL, c.POLICY_RULE_INSUFFICIENT_FUNDS),
        ({"max_trade_usd": 100.0}, SOL, c.POLICY_RULE_TRADE_CAP),
    ],
)
async def test_rules_deny_over_the_wire(
    harness: Harness, policy: dict[str, Any], amount: int, rule: int
) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(h, enabled=True, allowed_recipients=[str(BOB)], **policy)
    action = (await h.stub.CreateTransfer(kit.transfer(amount, "r"))).action
    assert action.state == c.ACTION_STATE_DENIED
    assert [r.rule for r in action.decision.reasons] == [rule]


async def test_cooldown(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(
        h, enabled=True, allowed_recipients=[str(BOB)], min_seconds_between_actions=3600
    )
    assert (await h.stub.CreateTransfer(kit.transfer(SOL, "c1"))).action.state == (
        c.ACTION_STATE_CONFIRMED
    )
    action = (await h.stub.CreateTransfer(kit.transfer(SOL, "c2"))).action
    assert [r.rule for r in action.decision.reasons] == [c.POLICY_RULE_COOLDOWN]


async def test_simulation_failure_denies(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    fresh = Keypair().pubkey()
    await kit.set_policy(h, enabled=True, allowed_recipients=[str(fresh)])
    action = (await h.stub.CreateTransfer(kit.transfer(1_000, "sim", to=fresh))).action
    assert action.state == c.ACTION_STATE_DENIED
    assert [r.rule for r in action.decision.reasons] == [c.POLICY_RULE_SIMULATION_FAILED]
    assert h.local.solana.balance(fresh) == 0
