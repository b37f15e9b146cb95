"""Fuzzing kit: Hypothesis strategies for any request message, and a server on its own thread so
a synchronous @given test can call it. hypothesis (a dev dependency) is imported lazily."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from puppet_runtime.server import ServiceSpec, started_server
from puppet_runtime.settings import ServiceSettings
from puppet_runtime.testing.servers import details_of

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy


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
        return FuzzOutcome(code, details, *details_of(trailers))
    return FuzzOutcome(grpc.StatusCode.OK)
