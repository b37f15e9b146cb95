"""Test harness: real memory services (stable, canary, a flaky canary) and load through Envoy."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from puppet.agent.v1 import agent_service_pb2 as agent_pb
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_gateway.config import GatewaySettings, ServiceUpstreams, safe_methods
from puppet_memory.server import build
from puppet_memory.settings import MemorySettings
from puppet_runtime import ServiceSpec
from puppet_runtime.testing import free_port

MEMORY = "puppet.memory.v1.MemoryService"
AGENT = "puppet.agent.v1.AgentService"
PERSONA = "agents/p1"


class TinyEmbedder:
    """Enough of an embedder to boot MemoryService; these tests never recall."""

    model = "test/zero-8"
    dimension = 8

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), np.float32)
        vectors[:, 0] = 1.0
        return vectors

    async def close(self) -> None:
        return None


class FailEvery(grpc.aio.ServerInterceptor):
    """Fails every `period`-th MemoryService call (the first succeeds) with INTERNAL."""

    def __init__(self, period: int) -> None:
        self._count = itertools.count()
        self._period = period

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        ours = handler is not None and details.method.startswith(f"/{MEMORY}/")
        if handler is None or not ours or next(self._count) % self._period != self._period - 1:
            return handler

        async def fail(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(grpc.StatusCode.INTERNAL, "injected failure")

        return grpc.unary_unary_rpc_method_handler(
            fail,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass
class MemoryInstance:
    """A real MemoryService (its own SQLite store) on 127.0.0.1; `kill()` stops it abruptly."""

    server: grpc.aio.Server
    port: int
    spec: ServiceSpec

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def kill(self) -> None:
        await self.server.stop(None)


@asynccontextmanager
async def memory_instance(
    data_dir: Path, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
) -> AsyncIterator[MemoryInstance]:
    """The memory service's own `build()` on a server we control (so a test can add a fault)."""
    settings = MemorySettings(port=0, data_dir=data_dir, drain_s=0, shutdown_grace_s=0)
    spec = build(settings, embedder=TinyEmbedder())
    for start in spec.on_startup:
        await start()
    server = grpc.aio.server(interceptors=list(interceptors))
    spec.register(server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in ("", MEMORY):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await rpc.MemoryServiceStub(channel).CreatePersona(
                pb.CreatePersonaRequest(persona_id="p1", allow_existing=True)
            )
        yield MemoryInstance(server, port, spec)
    finally:
        await server.stop(None)
        for close in spec.on_shutdown:
            await close()


PLACEHOLDERS: set[str] = set()


def gateway_settings(
    work: Path,
    stable: Sequence[str],
    canary: Sequence[str] = (),
    *,
    legacy_url: str | None = None,
    descriptor: Path | None = None,
    agent: Sequence[str] = (),
    canary_percent: int = 0,
    python_percent: int = 0,
    shadow: bool = False,
) -> GatewaySettings:
    services = [
        ServiceUpstreams(
            "memory", tuple(stable), tuple(canary), safe_methods=safe_methods("memory")
        )
    ]
    if agent or descriptor:
        placeholder = f"127.0.0.1:{free_port()}"  # nothing listens: Python is down
        PLACEHOLDERS.add(placeholder)
        services.append(ServiceUpstreams("agent", tuple(agent) or (placeholder,)))
    return GatewaySettings(
        services=tuple(services),
        runtime_root=work / "runtime" / "current",
        descriptor=descriptor,
        legacy_url=legacy_url,
        listen_port=free_port(),
        admin_port=free_port(),
        access_log=work / "access.log",
        health_interval_s=0.5,
        unhealthy_threshold=1,
        initial_weights={"memory": canary_percent, "rest": python_percent},
        shadow_port=free_port() if shadow else None,
    )


def health_checked(settings: GatewaySettings) -> list[str]:
    """Clusters to wait for (a placeholder agent upstream, on a free port, never is healthy)."""
    clusters: list[str] = []
    for svc in settings.services:
        if not PLACEHOLDERS.intersection(svc.stable):
            clusters += [svc.stable_cluster, *([svc.canary_cluster] if svc.canary else [])]
    return clusters


@dataclass
class Tally:
    """Who answered a run of calls through Envoy, and what failed."""

    hosts: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[tuple[float, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.hosts.values()) + len(self.errors)

    def share(self, address: str) -> float:
        return 100.0 * self.hosts[address] / max(1, sum(self.hosts.values()))


async def drive(
    channel: grpc.aio.Channel,
    n: int,
    *,
    concurrency: int = 16,
    metadata: Sequence[tuple[str, str]] = (),
    on_progress: Callable[[int], Awaitable[None]] | None = None,
) -> Tally:
    """Send `n` GetPersona calls through Envoy; count the answering host (x-upstream-host)."""
    stub = rpc.MemoryServiceStub(channel)
    tally = Tally()
    started = time.monotonic()
    sent = itertools.count()

    async def worker() -> None:
        while (i := next(sent)) < n:
            if on_progress is not None:
                await on_progress(i)
            call = stub.GetPersona(
                pb.GetPersonaRequest(name=PERSONA), metadata=tuple(metadata), timeout=5
            )
            try:
                await call
            except grpc.aio.AioRpcError as err:
                tally.errors.append((time.monotonic() - started, err.code().name))
                continue
            headers = dict(await call.initial_metadata())
            tally.hosts[str(headers.get("x-upstream-host", "?"))] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


class FakeAgent(agent_rpc.AgentServiceServicer):
    """Stands in for AgentService behind the transcoder: GetStatus and GetAgent only."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def GetStatus(  # noqa: N802
        self, request: agent_pb.GetStatusRequest, context: Any
    ) -> agent_pb.GetStatusResponse:
        self.calls["GetStatus"] += 1
        return agent_pb.GetStatusResponse(status="online", agents=1, uptime=3.5)

    async def GetAgent(  # noqa: N802
        self, request: agent_pb.GetAgentRequest, context: Any
    ) -> agent_pb.GetAgentResponse:
        self.calls["GetAgent"] += 1
        await context.abort(grpc.StatusCode.NOT_FOUND, f"Agent not found: {request.agent_id}")
        raise AssertionError("unreachable")


@asynccontextmanager
async def fake_agent() -> AsyncIterator[tuple[FakeAgent, str]]:
    """A FakeAgent on 127.0.0.1 with gRPC health SERVING; yields it and its address."""
    fake = FakeAgent()  # type: ignore[abstract]  # the other RPCs answer UNIMPLEMENTED
    server = grpc.aio.server()
    agent_rpc.add_AgentServiceServicer_to_server(fake, server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in ("", AGENT):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
