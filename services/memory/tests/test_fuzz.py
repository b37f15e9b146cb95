"""Hypothesis throws random requests at every MemoryService RPC: never INTERNAL or UNKNOWN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from puppet.memory.v1 import (
    memory_pb2 as m,
)
from puppet.memory.v1 import (
    memory_service_pb2 as pb,
)
from puppet.memory.v1 import (
    memory_service_pb2_grpc as rpc,
)
from puppet_memory.server import build
from puppet_memory.settings import MemorySettings
from puppet_runtime.testing import build_message, fuzz_scalars, message_values, serve_in_thread

# The huge strings are the point; Hypothesis warns when it renders them for a report.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

SERVICE = pb.DESCRIPTOR.services_by_name["MemoryService"]
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
NAMES = [
    "agents/fuzz",
    "agents/fuzz/memories/seed",
    "agents/fuzz/relationships/bob",
    "agents/nobody",
    "agents/",
    "agents/fuzz/memories/",
    "agents/FUZZ/relationships/x",
    "/",
    "fuzz",
]
SCALARS = fuzz_scalars(
    NAMES, huge=["x" * 8_001, "é" * 70_000, "\x00", "agents/fuzz/memories/" + "a" * 80]
)


@pytest.fixture(scope="module")
def stub(
    tmp_path_factory: pytest.TempPathFactory, embedder_class: type
) -> Iterator[rpc.MemoryServiceStub]:
    """One server in a background thread (its own event loop) and a sync channel to it."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = MemorySettings(port=0, data_dir=data_dir, drain_s=0, shutdown_grace_s=0)
    with serve_in_thread(lambda: build(config, embedder=embedder_class()), config) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        client = rpc.MemoryServiceStub(channel)
        client.CreatePersona(pb.CreatePersonaRequest(persona_id="fuzz"), timeout=5)
        client.CreateMemory(
            pb.CreateMemoryRequest(parent="agents/fuzz", memory=m.Memory(content="seed memory")),
            timeout=5,
        )
        yield client
        channel.close()


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
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(values=message_values(descriptor, SCALARS, max_repeated=40))
    def test(stub: rpc.MemoryServiceStub, values: dict[str, Any]) -> None:
        request = build_message(request_class, values)
        code, details = call(getattr(stub, method), request)
        assert code not in BAD, (method, str(request)[:500], details)

    return test


for _method in SERVICE.methods:
    globals()[f"test_fuzz_{_method.name}"] = fuzz(_method.name)


def test_the_server_still_answers(stub: rpc.MemoryServiceStub) -> None:
    stub.CreatePersona(pb.CreatePersonaRequest(persona_id="fuzz", allow_existing=True), timeout=5)
    got = stub.GetPersona(pb.GetPersonaRequest(name="agents/fuzz"), timeout=5)
    assert got.persona.name == "agents/fuzz"
    assert stub.ListPersonas(pb.ListPersonasRequest(), timeout=5).personas
