"""Hypothesis throws random requests at every ChainService RPC: never INTERNAL or UNKNOWN."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_chain.server import build
from puppet_chain.settings import ChainSettings
from puppet_runtime import started_server
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
text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
strings = st.one_of(
    text,
    st.sampled_from(NAMES),
    st.sampled_from(["x" * 8_001, "é" * 70_000, "\x00", "wallets/fuzz/actions/" + "a" * 80]),
)
ints32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-3, 600))
ints64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 10**10))
floats = st.floats(width=32, allow_nan=True, allow_infinity=True)
SCALARS: dict[int, Any] = {
    FieldDescriptor.TYPE_STRING: strings,
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_FLOAT: floats,
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    FieldDescriptor.TYPE_INT32: ints32,
    FieldDescriptor.TYPE_INT64: ints64,
    FieldDescriptor.TYPE_UINT64: st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 10**10)),
    FieldDescriptor.TYPE_ENUM: st.integers(-3, 9),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=16),
}


def value_of(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        return messages(field.message_type, depth + 1)
    strategy: st.SearchStrategy[Any] = SCALARS[field.type]
    return strategy


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Random field values for a message type, as kwargs; nested messages up to depth 3."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and depth >= 3:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, val = field.message_type.fields
            fields[field.name] = st.dictionaries(
                SCALARS[key.type], value_of(val, depth), max_size=40
            )
        elif field.is_repeated:
            most = 40 if field.type != FieldDescriptor.TYPE_MESSAGE else 3
            fields[field.name] = st.lists(value_of(field, depth), max_size=most)
        else:
            fields[field.name] = value_of(field, depth)
    return st.fixed_dictionaries({}, optional=fields)


def build_message(cls: Any, values: dict[str, Any]) -> Any:
    msg = cls()
    for name, value in values.items():
        field = msg.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if vfield.type == FieldDescriptor.TYPE_MESSAGE:
                    target[k].CopyFrom(build_message(type(target[k]), v))
                else:
                    target[k] = v
        elif field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    added = target.add()
                    added.CopyFrom(build_message(type(added), item))
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(build_message(type(target), value))
        else:
            setattr(msg, name, value)
    return msg


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rpc.ChainServiceStub]:
    """One server in a background thread (its own event loop) and a sync channel to it."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    ready, box = threading.Event(), dict[str, Any]()

    async def main() -> None:
        stop = asyncio.Event()
        config = ChainSettings(
            port=0,
            data_dir=data_dir,
            drain_s=0,
            shutdown_grace_s=0,
            rpc_timeout_s=1.0,
            confirm_timeout_s=1.0,
        )
        async with started_server(build(config), config) as srv:
            box.update(port=srv.port, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "fuzz server did not start"
    channel = grpc.insecure_channel(f"127.0.0.1:{box['port']}")
    client = rpc.ChainServiceStub(channel)
    client.CreateWallet(pb.CreateWalletRequest(wallet_id="fuzz", agent="agents/fuzz"), timeout=5)
    client.RequestAirdrop(
        pb.RequestAirdropRequest(wallet="wallets/fuzz", lamports=10**9), timeout=5
    )
    yield client
    channel.close()
    box["loop"].call_soon_threadsafe(box["stop"].set)
    thread.join(10)


def call(method: Any, request: Any) -> tuple[grpc.StatusCode, str]:
    try:
        method(request, timeout=10)
    except grpc.RpcError as err:
        return err.code(), str(err.details())
    return grpc.StatusCode.OK, ""


def fuzz(method: str) -> Any:
    """A test that sends random requests to one RPC (one test per RPC, named after it)."""
    descriptor = SERVICE.methods_by_name[method].input_type
    request_class = getattr(pb, descriptor.name)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values=messages(descriptor))
    def test(stub: rpc.ChainServiceStub, values: dict[str, Any]) -> None:
        request = build_message(request_class, values)
        code, details = call(getattr(stub, method), request)
        assert code not in BAD, (method, str(request)[:500], details)

    return test


for _method in SERVICE.methods:
    globals()[f"test_fuzz_{_method.name}"] = fuzz(_method.name)


def test_the_server_still_answers(stub: rpc.ChainServiceStub) -> None:
    got = stub.GetWallet(pb.GetWalletRequest(name="wallets/fuzz"), timeout=5)
    assert got.wallet.name == "wallets/fuzz"
