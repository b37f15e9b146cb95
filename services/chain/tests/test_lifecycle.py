"""Approvals lapse; the whole flow also runs on the MongoDB store (over the wire)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import grpc
import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_chain.store.mongo import MongoStore
from puppet_runtime.testing import load_sibling, status_of

kit = load_sibling(__file__, "kit")
serve = kit.serve
SOL, BOB = kit.SOL, kit.BOB


async def test_a_pending_approval_lapses(tmp_path: Path) -> None:
    async with serve(tmp_path, approval_ttl_s=0.05) as h:
        await kit.funded(h)
        await kit.set_policy(
            h, enabled=True, allowed_recipients=[str(BOB)], approval_threshold_lamports=1
        )
        held = (await h.stub.CreateTransfer(kit.transfer(SOL, "p"))).action
        assert held.state == c.ACTION_STATE_PENDING_APPROVAL
        await asyncio.sleep(0.1)
        lapsed = (await h.stub.GetAction(pb.GetActionRequest(name=held.name))).action
        assert lapsed.state == c.ACTION_STATE_REJECTED
        assert not lapsed.HasField("approval_expire_time")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await h.stub.ApproveAction(pb.ApproveActionRequest(name=held.name), metadata=kit.ADMIN)
        assert status_of(caught.value)[0] == grpc.StatusCode.FAILED_PRECONDITION
        entries = await h.stub.ListAuditEntries(
            pb.ListAuditEntriesRequest(parent="wallets/w1", action=held.name)
        )
        assert [e.kind for e in entries.audit_entries][-1] == c.AUDIT_KIND_REJECTED


@pytest.mark.mongo
async def test_transfer_on_the_mongo_store(tmp_path: Path, mongo_uri: str) -> None:
    store = MongoStore(mongo_uri, f"t_{uuid.uuid4().hex[:12]}")
    async with serve(tmp_path, store=store) as h:
        await kit.funded(h)
        await kit.set_policy(h, enabled=True, allowed_recipients=[str(BOB)])
        first = (await h.stub.CreateTransfer(kit.transfer(SOL // 2, "m1"))).action
        again = (await h.stub.CreateTransfer(kit.transfer(SOL // 2, "m1"))).action
        assert first.state == again.state == c.ACTION_STATE_CONFIRMED
        assert first.name == again.name
        assert h.local.solana.balance(BOB) == SOL // 2
        receipts = await h.stub.ListReceipts(pb.ListReceiptsRequest(parent="wallets/-"))
        assert [r.action for r in receipts.receipts] == [first.name]
