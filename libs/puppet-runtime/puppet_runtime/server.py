"""Boot a service: interceptors, health, reflection, graceful drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from puppet_runtime import telemetry
from puppet_runtime.interceptors import AccessLogInterceptor, ErrorInterceptor, RequestIdInterceptor
from puppet_runtime.settings import ServiceSettings

__all__ = ["Context", "ServiceSpec", "StartedServer", "run", "serve", "started_server"]

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
"""Servicer context type for handler signatures."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """Everything `puppet_runtime` needs to run one service."""

    domain: str
    """Error domain and metrics label, e.g. `memory.puppet`."""
    services: Sequence[ServiceDescriptor]
    """The gRPC services registered, for health, reflection and channels."""
    register: Callable[[grpc.aio.Server], None]
    """Adds the servicers to the server."""
    on_startup: Sequence[Callable[[], Awaitable[None]]] = ()
    """Run in order before the port opens (open a DB, load a model)."""
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()
    """Run in order after the server stopped; also after a failed startup, so they must cope
    with a partial one."""

    @property
    def service_names(self) -> list[str]:
        """Fully qualified names of `services`."""
        return [service.full_name for service in self.services]


@dataclass
class StartedServer:
    """A running server, as yielded by `started_server`."""

    server: grpc.aio.Server
    port: int
    """The bound port (the real one when 0 was asked for)."""
    health: health.aio.HealthServicer
    names: Sequence[str] = ()
    """Service names whose health `set_serving` flips, besides `""`."""

    async def set_serving(self, serving: bool) -> None:
        """Flip the overall (`""`) and every service's health status."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.names):
            await self.health.set(name, status)


@asynccontextmanager
async def started_server(
    spec: ServiceSpec, settings: ServiceSettings, *, port: int | None = None
) -> AsyncIterator[StartedServer]:
    """Start the service and stop it gracefully on exit; tests and production share this.

    On exit: health goes NOT_SERVING, `drain_s` passes, the server stops with
    `shutdown_grace_s` grace for in-flight RPCs, then `on_shutdown` hooks run. If startup
    fails (an `on_startup` hook raises, or the port cannot be bound) the error propagates and
    nothing is left running.

    Args:
        spec: The service to run.
        settings: Host, port and timings.
        port: Overrides `settings.port` (0 picks a free port).
    """
    server: grpc.aio.Server | None = None
    try:
        for hook in spec.on_startup:
            await hook()
        server, health_servicer = _build(spec)
        address = f"{settings.host}:{settings.port if port is None else port}"
        started = StartedServer(server, _bind(server, address), health_servicer, spec.service_names)
        await server.start()
    except BaseException:
        if server is not None:
            await server.stop(None)
        await _run_shutdown_hooks(spec)
        raise
    await started.set_serving(True)
    log.info("%s serving on %s:%d", spec.domain, settings.host, started.port)
    try:
        yield started
    finally:
        await _stop(spec, settings, started)


def _build(spec: ServiceSpec) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    interceptors = [
        *telemetry.server_interceptors(),
        RequestIdInterceptor(),
        AccessLogInterceptor(spec.domain),
        ErrorInterceptor(spec.domain),
    ]
    # Without so_reuseport=0 a second process silently shares a taken port.
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
    spec.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*spec.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return server, health_servicer


def _bind(server: grpc.aio.Server, address: str) -> int:
    try:
        return server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot bind {address}: {exc}") from exc


async def _stop(spec: ServiceSpec, settings: ServiceSettings, started: StartedServer) -> None:
    log.info("%s draining for %.1fs", spec.domain, settings.drain_s)
    await started.health.enter_graceful_shutdown()
    await asyncio.sleep(settings.drain_s)
    await started.server.stop(settings.shutdown_grace_s)
    await _run_shutdown_hooks(spec)
    log.info("%s stopped", spec.domain)


async def _run_shutdown_hooks(spec: ServiceSpec) -> None:
    """Run every hook even if one fails: a leaked DB handle is worse than a noisy log."""
    for hook in spec.on_shutdown:
        try:
            await hook()
        except Exception:
            log.exception("shutdown hook %r failed", hook)


async def serve(spec: ServiceSpec, settings: ServiceSettings) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop; returns normally."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with started_server(spec, settings):
            await stop.wait()
            log.info("%s received a stop signal", spec.domain)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def run(spec: ServiceSpec, settings: ServiceSettings) -> None:
    """The entry point of every service: configure logging, tracing, metrics, then serve.

    Returns normally (exit code 0) after a SIGTERM drain; a failed startup exits with 1.
    """
    telemetry.configure_logging(settings.log_level, settings.log_format)
    telemetry.configure_tracing(_service_name(spec.domain))
    if settings.metrics_port is not None:
        telemetry.start_metrics_server(settings.host, settings.metrics_port)
    try:
        asyncio.run(serve(spec, settings))
    except Exception:
        log.exception("%s failed", spec.domain)
        raise SystemExit(1) from None
    finally:
        telemetry.shutdown_tracing()


def _service_name(domain: str) -> str:
    """`memory.puppet` -> `puppet-memory`, the distribution name."""
    return f"puppet-{domain.split('.')[0]}"
