"""A whole session with a wallet key: the secret, in any of its forms, appears nowhere."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet_runtime.testing import load_sibling
from solders.keypair import Keypair

kit = load_sibling(__file__, "kit")
Harness = Any


def forms(key: Keypair) -> list[str]:
    raw = bytes(key)
    return [
        str(key),
        json.dumps(list(raw)),
        json.dumps(list(raw), separators=(",", ":")),
        raw.hex(),
        raw[:32].hex(),
        ",".join(str(b) for b in raw[:32]),
    ]


async def test_the_secret_never_leaks(
    harness: Harness, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    key = Keypair()
    said: list[str] = []

    async def attempt(call: Any, request: Any) -> None:
        try:
            said.append(str(await call(request, metadata=kit.ADMIN)))
        except grpc.aio.AioRpcError as err:
            said.extend([str(err), repr(err), str(err.details()), repr(err.trailing_metadata())])

    secret_forms = [str(key), json.dumps(list(bytes(key))), bytes(key).hex()]
    for i, secret in enumerate(secret_forms):
        await attempt(
            h.stub.ImportWallet,
            pb.ImportWalletRequest(
                wallet_id="w1" if i == 0 else f"w1-{i}", agent="agents/a", secret=secret
            ),
        )
        await attempt(
            h.stub.ImportWallet,
            pb.ImportWalletRequest(wallet_id="bad", agent="agents/a", secret=secret[:-2]),
        )
        await attempt(
            h.stub.ImportWallet,
            pb.ImportWalletRequest(wallet_id="bad!", agent="agents/a", secret=secret),
        )
    await h.stub.RequestAirdrop(pb.RequestAirdropRequest(wallet="wallets/w1", lamports=kit.SOL))
    await kit.set_policy(h, enabled=True, allowed_recipients=[str(kit.BOB)])
    said.append(str(await h.stub.CreateTransfer(kit.transfer(kit.SOL // 10, "t"))))
    said.append(str(await h.stub.GetWallet(pb.GetWalletRequest(name="wallets/w1"))))
    said.append(str(await h.stub.ListAuditEntries(pb.ListAuditEntriesRequest(parent="wallets/-"))))
    assert "CONFIRMED" in said[-3]
    logged = "\n".join([caplog.text, *(str(r.__dict__) for r in caplog.records)])
    assert "w1" in logged
    stored = b"".join(p.read_bytes() for p in h.settings.data_dir.rglob("*") if p.is_file())
    for form in forms(key):
        assert form not in logged
        assert all(form not in text for text in said)
        assert form.encode() not in stored
    assert bytes(key) not in stored
    assert bytes(key)[:32] not in stored
