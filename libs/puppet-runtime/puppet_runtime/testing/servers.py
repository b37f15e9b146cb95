"""Real servers on port 0, health waits, a MongoDB-wire server, and rich-status unpacking."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from puppet_runtime.channels import open_channel
from puppet_runtime.interceptors import ErrorInterceptor, RequestIdInterceptor
from puppet_runtime.server import ServiceSpec, StartedServer, started_server
from puppet_runtime.settings import ServiceSettings

_DETAILS_KEY = "grpc-status-details-bin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for subprocesses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def load_sibling(test_file: str, name: str) -> ModuleType:
    """Import helper module ``name`` that sits beside ``test_file`` (a fake server, say).

    Test folders are not packages and pytest runs with ``--import-mode=importlib``, so a helper
    is loaded by path, once per test folder, under a name unique to its service.

    Args:
        test_file: The caller's ``__file__``.
        name: The helper's module name, without ``.py``.
    """
    folder = Path(test_file).resolve().parent
    unique = f"{folder.parent.name}_tests_{name}".replace("-", "_")
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, folder / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no helper module {name!r} beside {test_file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def mongo_wire_server(work: Path, *, start_timeout_s: float = 20.0) -> Iterator[str]:
    """A MongoDB wire-protocol server (nx-27017, from PyPI) on 127.0.0.1; yields its URI.

    Each logical database is its own file under ``work``, so a fresh database name per test
    isolates tests. Stores under test talk to it with the real driver over a real socket.

    Args:
        work: Directory for the server's data, pid and log files.
        start_timeout_s: How long to wait for the port to accept connections.
    """
    executable = shutil.which("nx-27017")
    if executable is None:
        raise RuntimeError("nx-27017 is not installed (it is in the workspace's dev group)")
    port = free_port()
    log = work / "nx.log"
    command = [executable, "--host", "127.0.0.1", "-p", str(port), "--data-dir", str(work)]
    command += ["--pid-file", str(work / "nx.pid"), "--log-file", str(log)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nx-27017 did not start; see {log}")
            time.sleep(0.05)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def wait_serving(
    channel: grpc.aio.Channel, service: str = "", timeout_s: float = 5.0
) -> None:
    """Poll `grpc.health.v1.Health/Check` until `service` is SERVING.

    Args:
        channel: Channel to the server.
        service: Health service name; `""` is the whole server.
        timeout_s: Give up after this many seconds.

    Raises:
        TimeoutError: The service was not SERVING in time.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as err:
            last = err.code().name
        await asyncio.sleep(0.05)
    raise TimeoutError(f"health of {service!r} not SERVING after {timeout_s}s (last: {last})")


@asynccontextmanager
async def serve_servicer(
    register: Callable[[grpc.aio.Server], None], *, domain: str = "fake.puppet"
) -> AsyncIterator[int]:
    """Run fake servicers on a bare aio server on 127.0.0.1:0; yields the port.

    No health or reflection, but request ids are bound and `ServiceError`s map to rich
    statuses under `domain`, so a fake fails the way a real service does.

    Args:
        register: Adds the servicers, e.g. `lambda s: rpc.add_XServicer_to_server(fake, s)`.
        domain: `ErrorInfo.domain` for errors the fakes raise.
    """
    server = grpc.aio.server(interceptors=[RequestIdInterceptor(), ErrorInterceptor(domain)])
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


@asynccontextmanager
async def running(
    spec: ServiceSpec, settings: ServiceSettings
) -> AsyncIterator[tuple[StartedServer, grpc.aio.Channel]]:
    """`started_server` on port 0 plus an `open_channel` to it, both closed on exit."""
    async with (
        started_server(spec, settings, port=0) as started,
        open_channel(
            f"{_dial_host(settings.host)}:{started.port}",
            *spec.services,
            timeout_s=settings.request_timeout_s,
        ) as channel,
    ):
        yield started, channel


def _dial_host(host: str) -> str:
    """Where to connect to a server bound on `host` (wildcards mean loopback)."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def status_of(
    err: grpc.aio.AioRpcError,
) -> tuple[
    grpc.StatusCode, error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None
]:
    """Unpack a failed call: its code, and the `ErrorInfo`/`BadRequest` details if present."""
    return (err.code(), *details_of(err.trailing_metadata() or ()))


def details_of(
    trailers: Any,
) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None]:
    info: error_details_pb2.ErrorInfo | None = None
    bad_request: error_details_pb2.BadRequest | None = None
    for key, value in trailers:
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
    return info, bad_request
