"""Transfers through gRPC on the local Solana: SOL and SPL, receipts, audit, idempotency."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of
from solders.pubkey import Pubkey

kit = load_sibling(__file__, "kit")
Harness = Any
SOL, BOB, WSOL, ADMIN = kit.SOL, kit.BOB, kit.WSOL, kit.ADMIN
funded, set_policy, transfer = kit.funded, kit.set_policy, kit.transfer


async def test_sol_transfer_confirms_with_a_receipt_and_audit(harness: Harness) -> None:
    h = harness
    await funded(h)
    await set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
    action = (await h.stub.CreateTransfer(transfer(SOL // 4, "t1"))).action
    assert action.state == c.ACTION_STATE_CONFIRMED, action
    assert action.decision.verdict == c.VERDICT_ALLOW
    assert h.local.solana.balance(BOB) == SOL // 4
    receipt = (await h.stub.GetReceipt(pb.GetReceiptRequest(name=action.receipt))).receipt
    assert (receipt.amount_in.mint, receipt.amount_in.amount) == (WSOL, SOL // 4)
    assert (receipt.signature, receipt.recipient, receipt.fee_lamports) == (
        action.signature,
        str(BOB),
        5000,
    )
    assert receipt.slot > 0
    balance = (await h.stub.GetBalance(pb.GetBalanceRequest(wallet="wallets/w1"))).balance
    assert balance.lamports == 5 * SOL - SOL // 4 - 5000
    entries = (
        await h.stub.ListAuditEntries(pb.ListAuditEntriesRequest(parent="wallets/w1"))
    ).audit_entries
    kinds = [e.kind for e in entries if e.action == action.name]
    assert kinds == [
        c.AUDIT_KIND_REQUESTED,
        c.AUDIT_KIND_DECIDED,
        c.AUDIT_KIND_SUBMITTED,
        c.AUDIT_KIND_CONFIRMED,
    ]


async def test_spl_transfer_creates_the_recipient_token_account(harness: Harness) -> None:
    h = harness
    wallet = await funded(h)
    usdc = h.local.usdc_mint
    h.local.solana.mint_to(usdc, Pubkey.from_string(wallet.address), 1_000_000)
    await set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
    action = (await h.stub.CreateTransfer(transfer(250_000, "s1", mint=str(usdc)))).action
    assert action.state == c.ACTION_STATE_CONFIRMED, action
    receipt = (await h.stub.GetReceipt(pb.GetReceiptRequest(name=action.receipt))).receipt
    assert (receipt.amount_in.mint, receipt.amount_in.amount) == (str(usdc), 250_000)
    assert receipt.amount_in.symbol == "USDC"
    balance = (await h.stub.GetBalance(pb.GetBalanceRequest(wallet="wallets/w1"))).balance
    assert [(t.symbol, t.amount, t.decimals) for t in balance.tokens] == [("USDC", 750_000, 6)]


async def test_a_retry_storm_with_one_request_id_spends_once(harness: Harness) -> None:
    h = harness
    await funded(h)
    await set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
    results = await asyncio.gather(
        *(h.stub.CreateTransfer(transfer(SOL // 10, "storm")) for _ in range(20))
    )
    assert {r.action.name for r in results} == {results[0].action.name}
    assert {r.action.state for r in results} == {c.ACTION_STATE_CONFIRMED}
    assert h.local.solana.balance(BOB) == SOL // 10
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.CreateTransfer(transfer(SOL // 5, "storm"))
    code, info, _ = status_of(caught.value)
    assert (code, info.reason if info else "") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )


async def test_denial_is_a_result_with_reasons_and_nothing_is_sent(harness: Harness) -> None:
    h = harness
    await funded(h)
    action = (await h.stub.CreateTransfer(transfer(SOL, "d1"))).action
    assert action.state == c.ACTION_STATE_DENIED
    rules = {r.rule for r in action.decision.reasons}
    assert rules == {c.POLICY_RULE_TRADING_DISABLED, c.POLICY_RULE_RECIPIENT_NOT_ALLOWED}
    assert action.signature == ""
    assert h.local.solana.balance(BOB) == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.GetReceipt(
            pb.GetReceiptRequest(name=action.name.replace("/actions/", "/receipts/"))
        )
    assert status_of(caught.value)[0] == grpc.StatusCode.NOT_FOUND


async def test_needs_approval_then_approve_sends(harness: Harness) -> None:
    h = harness
    await funded(h)
    await set_policy(
        h, enabled=True, allowed_recipients=[str(BOB)], approval_threshold_lamports=SOL // 2
    )
    held = (await h.stub.CreateTransfer(transfer(SOL, "big"))).action
    assert held.state == c.ACTION_STATE_PENDING_APPROVAL
    assert [r.rule for r in held.decision.reasons] == [c.POLICY_RULE_APPROVAL_THRESHOLD]
    assert held.HasField("approval_expire_time")
    assert h.local.solana.balance(BOB) == 0
    queue = await h.stub.ListActions(
        pb.ListActionsRequest(parent="wallets/-", state=c.ACTION_STATE_PENDING_APPROVAL)
    )
    assert [a.name for a in queue.actions] == [held.name]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.ApproveAction(pb.ApproveActionRequest(name=held.name))
    assert status_of(caught.value)[0] == grpc.StatusCode.UNAUTHENTICATED
    done = await h.stub.ApproveAction(pb.ApproveActionRequest(name=held.name), metadata=ADMIN)
    assert done.action.state == c.ACTION_STATE_CONFIRMED
    assert h.local.solana.balance(BOB) == SOL
    again = await h.stub.ApproveAction(pb.ApproveActionRequest(name=held.name), metadata=ADMIN)
    assert again.action.state == c.ACTION_STATE_CONFIRMED


async def test_reject_sends_nothing(harness: Harness) -> None:
    h = harness
    await funded(h)
    await set_policy(h, enabled=True, allowed_recipients=[str(BOB)], approval_threshold_lamports=1)
    held = (await h.stub.CreateTransfer(transfer(SOL, "r1"))).action
    rejected = await h.stub.RejectAction(pb.RejectActionRequest(name=held.name), metadata=ADMIN)
    assert rejected.action.state == c.ACTION_STATE_REJECTED
    again = await h.stub.RejectAction(pb.RejectActionRequest(name=held.name), metadata=ADMIN)
    assert again.action.state == c.ACTION_STATE_REJECTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.ApproveAction(pb.ApproveActionRequest(name=held.name), metadata=ADMIN)
    code, info, _ = status_of(caught.value)
    assert (code, info.reason if info else "") == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOT_PENDING_APPROVAL",
    )
    assert h.local.solana.balance(BOB) == 0
