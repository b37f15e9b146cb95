"""Contract details: bad input names its field, wallets, paging, auth, idempotent imports."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_runtime.testing import load_sibling, status_of
from solders.keypair import Keypair

kit = load_sibling(__file__, "kit")
Harness = Any
BOB = str(kit.BOB)
ACTION = "wallets/w1/actions/0005f0c2a1b2c3d4e5f6a7"

BAD_INPUT = [
    (
        "ImportWallet",
        pb.ImportWalletRequest(wallet_id="W!", agent="agents/a", secret="x"),
        "wallet_id",
    ),
    ("ImportWallet", pb.ImportWalletRequest(wallet_id="w", agent="a", secret="x"), "agent"),
    ("ImportWallet", pb.ImportWalletRequest(wallet_id="w", agent="agents/a"), "secret"),
    ("CreateWallet", pb.CreateWalletRequest(wallet_id="", agent="agents/a"), "wallet_id"),
    (
        "CreateWallet",
        pb.CreateWalletRequest(wallet_id="w", agent="agents/a", request_id="r" * 129),
        "request_id",
    ),
    ("GetWallet", pb.GetWalletRequest(name="w1"), "name"),
    ("ListWallets", pb.ListWalletsRequest(page_size=-1), "page_size"),
    ("ListWallets", pb.ListWalletsRequest(page_token="junk"), "page_token"),
    ("RequestAirdrop", pb.RequestAirdropRequest(wallet="wallets/w1", lamports=0), "lamports"),
    ("GetBalance", pb.GetBalanceRequest(wallet="wallet/w1"), "wallet"),
    ("GetPrices", pb.GetPricesRequest(), "mints"),
    ("GetPrices", pb.GetPricesRequest(mints=["nope"]), "mints[0]"),
    ("GetQuote", pb.GetQuoteRequest(input_mint=BOB, output_mint=BOB, amount=1), "output_mint"),
    ("GetQuote", pb.GetQuoteRequest(input_mint=BOB, output_mint=kit.WSOL), "amount"),
    ("EvaluatePolicy", pb.EvaluatePolicyRequest(wallet="wallets/w1"), "proposal"),
    (
        "CreateTransfer",
        pb.CreateTransferRequest(
            parent="wallets/w1", transfer=c.Transfer(recipient=BOB, amount=1), requester="operator"
        ),
        "request_id",
    ),
    (
        "CreateTransfer",
        pb.CreateTransferRequest(
            parent="wallets/w1",
            transfer=c.Transfer(recipient="bob", amount=1),
            request_id="r",
            requester="operator",
        ),
        "transfer.recipient",
    ),
    (
        "CreateTransfer",
        pb.CreateTransferRequest(
            parent="wallets/w1",
            transfer=c.Transfer(recipient=BOB, amount=1),
            request_id="r",
            requester="someone",
        ),
        "requester",
    ),
    (
        "CreateSwap",
        pb.CreateSwapRequest(
            parent="wallets/w1",
            swap=c.Swap(input_mint=kit.WSOL, output_mint=BOB, amount=1, slippage_bps=5001),
            request_id="r",
            requester="operator",
        ),
        "swap.slippage_bps",
    ),
    ("GetAction", pb.GetActionRequest(name="wallets/w1/actions/x"), "name"),
    ("ListActions", pb.ListActionsRequest(parent="wallets/w1", state=42), "state"),  # type: ignore[arg-type]
    ("ApproveAction", pb.ApproveActionRequest(name=ACTION, note="n" * 501), "note"),
    ("RejectAction", pb.RejectActionRequest(name="actions/1"), "name"),
    ("GetPolicy", pb.GetPolicyRequest(name="wallets/w1"), "name"),
    (
        "UpdatePolicy",
        pb.UpdatePolicyRequest(
            policy=c.Policy(name="wallets/w1/policy"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        "update_mask",
    ),
    (
        "UpdatePolicy",
        pb.UpdatePolicyRequest(policy=c.Policy(name="wallets/w1/policy", max_slippage_bps=6000)),
        "policy.max_slippage_bps",
    ),
    (
        "UpdatePolicy",
        pb.UpdatePolicyRequest(
            policy=c.Policy(name="wallets/w1/policy", allowed_recipients=["bob"])
        ),
        "policy.allowed_recipients[0]",
    ),
    ("ListAuditEntries", pb.ListAuditEntriesRequest(parent="wallets/w1", action="x"), "action"),
    ("GetReceipt", pb.GetReceiptRequest(name="wallets/w1/receipts/"), "name"),
    ("ListReceipts", pb.ListReceiptsRequest(parent="wallets"), "parent"),
]


async def test_bad_input_is_invalid_argument_naming_the_field(harness: Harness) -> None:
    """Every case against one server (starting one per case is the slow part)."""
    wrong = []
    for method, request, field in BAD_INPUT:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(harness.stub, method)(request, metadata=kit.ADMIN)
        code, info, bad = status_of(caught.value)
        fields = [v.field for v in bad.field_violations] if bad else []
        domain = info.domain if info else ""
        if (code, domain) != (
            grpc.StatusCode.INVALID_ARGUMENT,
            "chain.puppet",
        ) or field not in fields:
            wrong.append((method, field, code, domain, fields))
    assert wrong == []


async def test_import_is_idempotent_and_keys_are_unique(harness: Harness) -> None:
    h = harness
    key = Keypair()
    request = pb.ImportWalletRequest(
        wallet_id="imp", agent="agents/a", secret=json.dumps(list(bytes(key))), request_id="i1"
    )
    first = (await h.stub.ImportWallet(request, metadata=kit.ADMIN)).wallet
    again = (await h.stub.ImportWallet(request, metadata=kit.ADMIN)).wallet
    assert first == again
    assert (first.address, first.cluster) == (str(key.pubkey()), "localnet")
    twin = pb.ImportWalletRequest(wallet_id="twin", agent="agents/a", secret=str(key))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.ImportWallet(twin, metadata=kit.ADMIN)
    code, info, _ = status_of(caught.value)
    assert (code, info.reason if info else "") == (
        grpc.StatusCode.ALREADY_EXISTS,
        "WALLET_ALREADY_EXISTS",
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.ImportWallet(twin)
    assert status_of(caught.value)[0] == grpc.StatusCode.UNAUTHENTICATED


async def test_missing_things_are_not_found(harness: Harness) -> None:
    h = harness
    for call, request, reason in [
        (h.stub.GetWallet, pb.GetWalletRequest(name="wallets/nope"), "WALLET_NOT_FOUND"),
        (
            h.stub.GetAction,
            pb.GetActionRequest(name="wallets/nope/actions/0005f0c2a1b2c3d4e5f6a7"),
            "WALLET_NOT_FOUND",
        ),
        (
            h.stub.GetReceipt,
            pb.GetReceiptRequest(name="wallets/w/receipts/0005f0c2a1b2c3d4e5f6a7"),
            "RECEIPT_NOT_FOUND",
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request)
        code, info, _ = status_of(caught.value)
        assert (code, info.reason if info else "") == (grpc.StatusCode.NOT_FOUND, reason)


async def test_wallets_page_and_policy_defaults(harness: Harness) -> None:
    h = harness
    for i in range(5):
        await h.stub.CreateWallet(pb.CreateWalletRequest(wallet_id=f"w{i}", agent="agents/a"))
    seen, token = [], ""
    while True:
        page = await h.stub.ListWallets(pb.ListWalletsRequest(page_size=2, page_token=token))
        seen += [w.name for w in page.wallets]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"wallets/w{i}" for i in range(5)]
    policy = (await h.stub.GetPolicy(pb.GetPolicyRequest(name="wallets/w0/policy"))).policy
    assert (policy.enabled, policy.simulate_before_send) == (False, True)
    updated = await kit.set_policy(h, "w0", enabled=True, max_trade_usd=5.0)
    assert (updated.enabled, updated.max_trade_usd, updated.simulate_before_send) == (
        True,
        5.0,
        True,
    )
    entries = await h.stub.ListAuditEntries(pb.ListAuditEntriesRequest(parent="wallets/w0"))
    assert [e.kind for e in entries.audit_entries] == [
        c.AUDIT_KIND_WALLET_ADDED,
        c.AUDIT_KIND_POLICY_UPDATED,
    ]


async def page_all(call: Any, request: Any, field: str) -> list[Any]:
    items, token = [], ""
    while True:
        request.page_token = token
        page = await call(request)
        items += list(getattr(page, field))
        token = page.next_page_token
        if not token:
            return items


async def test_actions_and_audit_page_to_the_end(harness: Harness) -> None:
    h = harness
    await kit.funded(h)
    made = [(await h.stub.CreateTransfer(kit.transfer(1, f"p{i}"))).action for i in range(5)]
    actions = await page_all(
        h.stub.ListActions, pb.ListActionsRequest(parent="wallets/w1", page_size=2), "actions"
    )
    assert [a.name for a in actions] == [a.name for a in reversed(made)]
    entries = await page_all(
        h.stub.ListAuditEntries,
        pb.ListAuditEntriesRequest(parent="wallets/-", page_size=3),
        "audit_entries",
    )
    assert len(entries) == 1 + 2 * 5  # wallet added, then requested + decided per denial
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    first = await h.stub.ListActions(pb.ListActionsRequest(parent="wallets/w1", page_size=2))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await h.stub.ListActions(
            pb.ListActionsRequest(parent="wallets/-", page_token=first.next_page_token)
        )
    assert status_of(caught.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
