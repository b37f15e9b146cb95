"""Hypothesis throws random requests at every ChainService RPC: never INTERNAL or UNKNOWN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_chain.server import build
from puppet_chain.settings import ChainSettings
from puppet_runtime.testing import (
    build_message,
    call_sync,
    fuzz_scalars,
    message_values,
    serve_in_thread,
)
from solders.keypair import Keypair

# The huge strings are the point; Hypothesis warns when it renders them for a report.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SERVICE = pb.DESCRIPTOR.services_by_name["ChainService"]
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
NAMES = [
    "wallets/fuzz",
    "wallets/fuzz/policy",
    "wallets/fuzz/actions/0005f0c2a1b2c3d4e5f6a7",
    "wallets/fuzz/receipts/0005f0c2a1b2c3d4e5f6a7",
    "wallets/-",
    "wallets/nobody",
    "agents/fuzz",
    "operator",
    "So11111111111111111111111111111111111111112",
    str(Keypair().pubkey()),
    str(Keypair()),
    "wallets/",
    "/",
]
SCALARS = fuzz_scalars(
    NAMES, huge=["x" * 8_001, "é" * 70_000, "\x00", "wallets/fuzz/actions/" + "a" * 80]
)


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rpc.ChainServiceStub]:
    """One server in a background thread (its own event loop) and a sync channel to it."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = ChainSettings(
        port=0,
        data_dir=data_dir,
        drain_s=0,
        shutdown_grace_s=0,
        rpc_timeout_s=1.0,
        confirm_timeout_s=1.0,
    )
    with (
        serve_in_thread(lambda: build(config), config) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        client = rpc.ChainServiceStub(channel)
        client.CreateWallet(
            pb.CreateWalletRequest(wallet_id="fuzz", agent="agents/fuzz"), timeout=5
        )
        client.RequestAirdrop(
            pb.RequestAirdropRequest(wallet="wallets/fuzz", lamports=10**9), timeout=5
        )
        yield client


def fuzz(method: str) -> Any:
    """A test that sends random requests to one RPC (one test per RPC, named after it)."""
    descriptor = SERVICE.methods_by_name[method].input_type
    request_class = getattr(pb, descriptor.name)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values=message_values(descriptor, SCALARS))
    def test(stub: rpc.ChainServiceStub, values: dict[str, Any]) -> None:
        request = build_message(request_class, values)
        outcome = call_sync(getattr(stub, method), request)
        assert outcome.code not in BAD, (method, str(request)[:500], outcome.details)

    return test


for _method in SERVICE.methods:
    globals()[f"test_fuzz_{_method.name}"] = fuzz(_method.name)


def test_the_server_still_answers(stub: rpc.ChainServiceStub) -> None:
    got = stub.GetWallet(pb.GetWalletRequest(name="wallets/fuzz"), timeout=5)
    assert got.wallet.name == "wallets/fuzz"
