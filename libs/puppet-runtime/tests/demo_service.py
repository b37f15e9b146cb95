"""A tiny service for the runtime's tests, built without generated code; runnable as a script.

`DemoService` has four methods over `google.protobuf.StringValue`, one per idempotency level
and one server-streaming. The request value is a small command language (see `Demo.echo`).
Run as `python demo_service.py` it serves through `puppet_runtime.run`, configured by
`PUPPET_DEMO_*` variables, exactly as a real service's `main()` does.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2
from google.protobuf.descriptor import ServiceDescriptor
from puppet_runtime import (
    Context,
    NotFound,
    ServiceSettings,
    ServiceSpec,
    Unavailable,
    current_request_id,
    invalid_field,
    open_channel,
    run,
)
from pydantic_settings import SettingsConfigDict

SERVICE_NAME = "demo.v1.DemoService"
DOMAIN = "demo.puppet"
_LEVELS = descriptor_pb2.MethodOptions
METHODS = {
    "Echo": (_LEVELS.NO_SIDE_EFFECTS, False),
    "Put": (_LEVELS.IDEMPOTENT, False),
    "Fire": (_LEVELS.IDEMPOTENCY_UNKNOWN, False),
    "Count": (_LEVELS.NO_SIDE_EFFECTS, True),
}

log = logging.getLogger("demo")


def _service() -> ServiceDescriptor:
    file = descriptor_pb2.FileDescriptorProto(
        name="puppet_runtime_tests/demo.proto",
        package="demo.v1",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    service = file.service.add(name="DemoService")
    for name, (level, streaming) in METHODS.items():
        method = service.method.add(
            name=name,
            input_type=".google.protobuf.StringValue",
            output_type=".google.protobuf.StringValue",
            server_streaming=streaming,
        )
        method.options.idempotency_level = level
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(file.SerializeToString())
    return pool.FindServiceByName(SERVICE_NAME)


SERVICE = _service()


class DemoSettings(ServiceSettings):
    """Settings for the demo, read from `PUPPET_DEMO_*`."""

    model_config = SettingsConfigDict(env_prefix="PUPPET_DEMO_", frozen=True, extra="ignore")

    port: int = 50099


def sv(value: str) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=value)


class Demo:
    """The servicer. `attempts` counts calls per (method, value) for the retry tests."""

    def __init__(self) -> None:
        self.attempts: collections.Counter[tuple[str, str]] = collections.Counter()

    async def echo(self, request: wrappers_pb2.StringValue, context: Context) -> Any:
        """Commands: not-found, invalid, boom, flaky, sleep:<s>, request-id, remaining,
        forward:<host:port>; anything else is echoed."""
        command, _, arg = request.value.partition(":")
        self.attempts["Echo", request.value] += 1
        if command == "not-found":
            raise NotFound("THING_NOT_FOUND", f"Thing {arg!r} does not exist.", {"name": arg})
        if command == "invalid":
            raise invalid_field("thing.size", "must be positive")
        if command == "boom":
            raise RuntimeError("secret: password=hunter2")
        if command == "flaky" and self.attempts["Echo", request.value] == 1:
            raise Unavailable("DEMO_BUSY", "Busy; try again.")
        if command == "sleep":
            await asyncio.sleep(float(arg))
        if command == "request-id":
            log.info("handling request-id")
            return sv(current_request_id())
        if command == "remaining":
            return sv(str(context.time_remaining()))
        if command == "forward":
            async with open_channel(arg, SERVICE) as channel:
                return await channel.unary_unary(
                    f"/{SERVICE_NAME}/Echo",
                    request_serializer=wrappers_pb2.StringValue.SerializeToString,
                    response_deserializer=wrappers_pb2.StringValue.FromString,
                )(sv("request-id"))
        return request

    async def put(self, request: wrappers_pb2.StringValue, context: Context) -> Any:
        return await self._flaky("Put", request)

    async def fire(self, request: wrappers_pb2.StringValue, context: Context) -> Any:
        return await self._flaky("Fire", request)

    async def _flaky(self, method: str, request: wrappers_pb2.StringValue) -> Any:
        """Fails with UNAVAILABLE on the first attempt for each value, then succeeds."""
        self.attempts[method, request.value] += 1
        if self.attempts[method, request.value] == 1:
            raise Unavailable("DEMO_BUSY", "Busy; try again.")
        return request

    async def count(
        self, request: wrappers_pb2.StringValue, context: Context
    ) -> AsyncIterator[Any]:
        """`<n>` yields 0..n-1; `boom-after:<n>` / `not-found-after:<n>` then fail."""
        command, _, arg = request.value.partition(":")
        for i in range(int(arg or command)):
            yield sv(str(i))
        if command == "boom-after":
            raise RuntimeError("secret: stream exploded")
        if command == "not-found-after":
            raise NotFound("THING_NOT_FOUND", "Gone mid-stream.", {"name": "x"})

    def handler(self) -> grpc.GenericRpcHandler:
        codec: dict[str, Any] = {
            "request_deserializer": wrappers_pb2.StringValue.FromString,
            "response_serializer": wrappers_pb2.StringValue.SerializeToString,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(self.echo, **codec),
                "Put": grpc.unary_unary_rpc_method_handler(self.put, **codec),
                "Fire": grpc.unary_unary_rpc_method_handler(self.fire, **codec),
                "Count": grpc.unary_stream_rpc_method_handler(self.count, **codec),
            },
        )


def build(
    demo: Demo | None = None,
    *,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> ServiceSpec:
    servicer = demo or Demo()
    return ServiceSpec(
        domain=DOMAIN,
        services=[SERVICE],
        register=lambda server: server.add_generic_rpc_handlers((servicer.handler(),)),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def main() -> None:
    settings = DemoSettings()
    run(build(), settings)


if __name__ == "__main__":
    main()
