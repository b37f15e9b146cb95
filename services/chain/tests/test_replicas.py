"""Two replicas over one MongoDB store and one Solana: caps and request_ids hold across them."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from pathlib import Path

import pytest
from puppet.chain.v1 import chain_pb2 as c
from puppet_chain.localnet import embedded
from puppet_chain.store.mongo import MongoStore
from puppet_runtime.testing import load_sibling
from pydantic import SecretStr

kit = load_sibling(__file__, "kit")
SOL, BOB = kit.SOL, kit.BOB
pytestmark = pytest.mark.mongo


async def test_two_replicas_spend_once_and_respect_the_daily_cap(
    tmp_path: Path, mongo_uri: str
) -> None:
    database, key = f"t_{uuid.uuid4().hex[:12]}", SecretStr(secrets.token_hex(32))
    with embedded() as local:
        async with contextlib.AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(
                    kit.serve(
                        tmp_path / name,
                        store=MongoStore(mongo_uri, database),
                        keystore_key=key,
                        rpc_url=local.rpc_url,
                        jupiter_url=local.jupiter_url,
                    )
                )
                for name in ("a", "b")
            ]
            one, two = replicas
            await kit.funded(one)
            await kit.set_policy(
                two, enabled=True, allowed_recipients=[str(BOB)], max_daily_actions=2
            )
            storm = await asyncio.gather(
                *(r.stub.CreateTransfer(kit.transfer(SOL // 10, "same")) for r in replicas * 5)
            )
            assert len({s.action.name for s in storm}) == 1
            assert local.solana.balance(BOB) == SOL // 10
            raced = await asyncio.gather(
                *(
                    r.stub.CreateTransfer(kit.transfer(SOL // 10, f"r{i}"))
                    for i, r in enumerate(replicas * 2)
                )
            )
            states = sorted(r.action.state for r in raced)
            assert states == [c.ACTION_STATE_DENIED] * 3 + [c.ACTION_STATE_CONFIRMED]
            assert local.solana.balance(BOB) == 2 * SOL // 10
