"""Swaps through the local Jupiter-shaped API: quote, decide, sign, send, confirm, receipt."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of

kit = load_sibling(__file__, "kit")
Harness = Any
SOL, WSOL = kit.SOL, kit.WSOL


def swap(h: Harness, amount: int, rid: str, slippage: int = 0, *, to_sol: bool = False) -> Any:
    usdc = str(h.local.usdc_mint)
    pair = (usdc, WSOL) if to_sol else (WSOL, usdc)
    return pb.CreateSwapRequest(
        parent="wallets/w1",
        requester="agents/a",
        request_id=rid,
        swap=c.Swap(input_mint=pair[0], output_mint=pair[1], amount=amount, slippage_bps=slippage),
    )


async def test_quote_and_prices(harness: Harness) -> None:
    h = harness
    usdc = str(h.local.usdc_mint)
    quote = (
        await h.stub.GetQuote(pb.GetQuoteRequest(input_mint=WSOL, output_mint=usdc, amount=SOL))
    ).quote
    assert (quote.in_amount, quote.out_amount, quote.slippage_bps) == (SOL, 150_000_000, 50)
    assert quote.min_out_amount == 150_000_000 * 9950 // 10000
    prices = await h.stub.GetPrices(pb.GetPricesRequest(mints=[usdc, WSOL, str(kit.BOB)]))
    assert [(p.symbol, p.usd, p.source) for p in prices.prices] == [
        ("USDC", 1.0, "local"),
        ("SOL", 150.0, "local"),
    ]


async def test_swap_sol_to_usdc_and_back_with_receipts(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(h, enabled=True)
    bought = (await h.stub.CreateSwap(swap(h, SOL, "buy"))).action
    assert bought.state == c.ACTION_STATE_CONFIRMED, bought
    assert bought.swap.quote.out_amount == 150_000_000
    receipt = (await h.stub.GetReceipt(pb.GetReceiptRequest(name=bought.receipt))).receipt
    assert (receipt.amount_in.amount, receipt.amount_out.amount) == (SOL, 150_000_000)
    assert (receipt.amount_in.symbol, receipt.amount_out.symbol) == ("SOL", "USDC")
    assert receipt.realized_price == pytest.approx(150.0)
    sold = (await h.stub.CreateSwap(swap(h, 75_000_000, "sell", to_sol=True))).action
    assert sold.state == c.ACTION_STATE_CONFIRMED, sold
    receipt = (await h.stub.GetReceipt(pb.GetReceiptRequest(name=sold.receipt))).receipt
    assert (receipt.amount_in.amount, receipt.amount_out.amount) == (75_000_000, SOL // 2)
    receipts = (await h.stub.ListReceipts(pb.ListReceiptsRequest(parent="wallets/w1"))).receipts
    assert [r.action for r in receipts] == [sold.name, bought.name]


async def test_swap_slippage_and_mint_rules_deny(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(
        h, enabled=True, max_slippage_bps=50, denied_mints=[str(h.local.usdc_mint)]
    )
    denied = (await h.stub.CreateSwap(swap(h, SOL, "x", slippage=300))).action
    assert denied.state == c.ACTION_STATE_DENIED
    assert {r.rule for r in denied.decision.reasons} == {
        c.POLICY_RULE_SLIPPAGE,
        c.POLICY_RULE_MINT_NOT_ALLOWED,
    }


async def test_no_route_is_failed_precondition(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(h, enabled=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.CreateSwap(swap(h, 10**18, "huge"))
    code, info, _ = status_of(caught.value)
    assert (code, info.reason if info else "") == (grpc.StatusCode.FAILED_PRECONDITION, "NO_ROUTE")


async def test_usd_caps_use_prices(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    await kit.set_policy(h, enabled=True, max_trade_usd=100.0)
    decision = (
        await h.stub.EvaluatePolicy(
            pb.EvaluatePolicyRequest(wallet="wallets/w1", swap=swap(h, SOL, "e").swap)
        )
    ).decision
    assert decision.verdict == c.VERDICT_DENY
    assert [r.rule for r in decision.reasons] == [c.POLICY_RULE_TRADE_CAP]
    assert decision.value_usd == pytest.approx(150.0)
    small = (await h.stub.CreateSwap(swap(h, SOL // 2, "ok"))).action
    assert small.state == c.ACTION_STATE_CONFIRMED
