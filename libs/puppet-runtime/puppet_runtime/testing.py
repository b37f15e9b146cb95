"""Test kit: real servers on port 0, health waits, and rich-status unpacking."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from puppet_runtime.channels import open_channel
from puppet_runtime.interceptors import ErrorInterceptor, RequestIdInterceptor
from puppet_runtime.server import ServiceSpec, StartedServer, started_server
from puppet_runtime.settings import ServiceSettings

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "FuzzOutcome",
    "build_message",
    "call_sync",
    "free_port",
    "fuzz_scalars",
    "load_sibling",
    "message_values",
    "mongo_wire_server",
    "running",
    "serve_in_thread",
    "serve_servicer",
    "status_of",
    "wait_serving",
]

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
    return (err.code(), *_details(err.trailing_metadata() or ()))


def _details(
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


# Fuzzing: Hypothesis strategies for any request message, and a server on its own thread so a
# synchronous @given test can call it. hypothesis (a dev dependency) is imported lazily.


def fuzz_scalars(
    names: Sequence[str] = (), huge: Sequence[str] = ("x" * 20_001, "é" * 5_000, "\x00")
) -> dict[int, SearchStrategy[Any]]:
    """Strategies per scalar field type: short text, the given names and huge strings, extreme
    and small ints, odd floats, unknown enum numbers."""
    from hypothesis import strategies as st

    text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
    parts = [text]
    if names:
        parts.append(st.sampled_from(list(names)))
    if huge:
        parts.append(st.sampled_from(list(huge)))
    return {
        FieldDescriptor.TYPE_STRING: st.one_of(*parts),
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
        FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
        FieldDescriptor.TYPE_INT32: st.one_of(
            st.integers(-(2**31), 2**31 - 1), st.integers(-3, 600)
        ),
        FieldDescriptor.TYPE_INT64: st.one_of(
            st.integers(-(2**63), 2**63 - 1), st.integers(-3, 10**10)
        ),
        FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
        FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
        FieldDescriptor.TYPE_ENUM: st.integers(-3, 9),
        FieldDescriptor.TYPE_BYTES: st.binary(max_size=16),
    }


def message_values(
    descriptor: Descriptor,
    scalars: Mapping[int, SearchStrategy[Any]] | None = None,
    *,
    max_depth: int = 3,
    max_repeated: int = 30,
    _depth: int = 0,
) -> SearchStrategy[dict[str, Any]]:
    """Random values for any subset of a message's fields, as kwargs for `build_message`.

    Nested messages go `max_depth` levels deep; repeated scalars hold up to `max_repeated`
    items, repeated messages up to 3; maps are dictionaries.
    """
    from hypothesis import strategies as st

    table = dict(scalars) if scalars is not None else fuzz_scalars()

    def value_of(field: FieldDescriptor) -> SearchStrategy[Any]:
        if field.message_type is not None:
            return message_values(
                field.message_type,
                table,
                max_depth=max_depth,
                max_repeated=max_repeated,
                _depth=_depth + 1,
            )
        return table[field.type]

    fields: dict[str, SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and _depth >= max_depth:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, val = field.message_type.fields
            fields[field.name] = st.dictionaries(table[key.type], value_of(val), max_size=10)
        elif field.is_repeated:
            most = max_repeated if field.type != FieldDescriptor.TYPE_MESSAGE else 3
            fields[field.name] = st.lists(value_of(field), max_size=most)
        else:
            fields[field.name] = value_of(field)
    return st.fixed_dictionaries({}, optional=fields)


def build_message(cls: type[Message], values: Mapping[str, Any]) -> Any:
    """An instance of `cls` from `message_values` output (nested dicts for nested messages)."""
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


@contextmanager
def serve_in_thread(
    spec: Callable[[], ServiceSpec], settings: ServiceSettings, *, start_timeout_s: float = 10.0
) -> Iterator[int]:
    """`started_server` on port 0 in a background thread with its own event loop; yields the
    port. For synchronous tests (Hypothesis' @given) that call it over a sync channel.

    Args:
        spec: Builds the ServiceSpec (called on the server's thread and loop).
        settings: The server's settings.
        start_timeout_s: How long to wait for the server to serve.
    """
    ready, box = threading.Event(), dict[str, Any]()

    async def main() -> None:
        stop = asyncio.Event()
        try:
            async with started_server(spec(), settings, port=0) as started:
                box.update(port=started.port, loop=asyncio.get_running_loop(), stop=stop)
                ready.set()
                await stop.wait()
        except BaseException as err:
            box["error"] = err
            ready.set()
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(start_timeout_s) or "error" in box:
        raise RuntimeError(f"server did not start: {box.get('error')!r}")
    try:
        yield int(box["port"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(start_timeout_s)


class FuzzOutcome:
    """How one synchronous call ended: code, details and the rich-status parts."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str = "",
        info: error_details_pb2.ErrorInfo | None = None,
        bad_request: error_details_pb2.BadRequest | None = None,
    ) -> None:
        self.code = code
        self.details = details
        self.info = info
        self.bad_request = bad_request

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    @property
    def fields(self) -> list[str]:
        """Fields named by BadRequest violations (empty without them)."""
        if self.bad_request is None:
            return []
        return [v.field for v in self.bad_request.field_violations]

    def __repr__(self) -> str:
        reason = self.info.reason if self.info is not None else ""
        return f"FuzzOutcome({self.code.name}, {reason!r}, {self.details[:200]!r}, {self.fields})"


def call_sync(
    method: Any, request: Message, *, timeout: float = 10.0, metadata: Any = None
) -> FuzzOutcome:
    """Call a sync stub method (unary, or server-streaming: drained) and describe the outcome."""
    try:
        reply = method(request, timeout=timeout, metadata=metadata)
        if not isinstance(reply, Message):
            for _ in reply:
                pass
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        details = str(err.details())
        trailers = err.trailing_metadata() or ()
        return FuzzOutcome(code, details, *_details(trailers))
    return FuzzOutcome(grpc.StatusCode.OK)
