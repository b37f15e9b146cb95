"""Outgoing channels: retry policy from the proto, a deadline on every call, request ids."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions
from grpc.aio import Metadata

from puppet_runtime import telemetry
from puppet_runtime.interceptors import REQUEST_ID_KEY, current_request_id

__all__ = ["RETRY_POLICY", "CallDefaultsChannel", "open_channel", "service_config"]

_Metadata = Metadata | Sequence[tuple[str, str | bytes]]
_Requests = AsyncIterator[Any] | Iterator[Any] | None

_SAFE = frozenset({MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT})

RETRY_POLICY: dict[str, Any] = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
"""AIP-194: retry only UNAVAILABLE, and only methods that are safe to repeat."""


def _duration(seconds: float) -> str:
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _method_configs(service: ServiceDescriptor, timeout: str | None) -> list[dict[str, Any]]:
    deadline = {"timeout": timeout} if timeout else {}
    safe = [
        {"service": service.full_name, "method": method.name}
        for method in service.methods
        if method.GetOptions().idempotency_level in _SAFE
    ]
    configs: list[dict[str, Any]] = []
    if safe:
        configs.append({"name": safe, **deadline, "retryPolicy": RETRY_POLICY})
    if deadline:
        configs.append({"name": [{"service": service.full_name}], **deadline})
    return configs


def service_config(service: ServiceDescriptor, *, timeout_s: float) -> str:
    """The gRPC service config (JSON) for calling `service`, as STYLE B4 describes it.

    Every method gets `timeout_s` as its deadline. Methods the proto marks
    `idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT` are retried on UNAVAILABLE only.

    grpcio (Python) computes service-config timeouts from the wrong start time, so calls fail
    early with DEADLINE_EXCEEDED (grpc/grpc#40633, grpc/grpc#34547). `open_channel` therefore
    installs only the retry policies and applies the deadline per call; prefer it to handing
    this config to a channel yourself.

    Args:
        service: Descriptor of the service, e.g. `pb.DESCRIPTOR.services_by_name["X"]`.
        timeout_s: Deadline for each call, in seconds (retries included).
    """
    return json.dumps({"methodConfig": _method_configs(service, _duration(timeout_s))})


def open_channel(
    target: str, *services: ServiceDescriptor, timeout_s: float = 10.0
) -> grpc.aio.Channel:
    """Open an insecure aio channel configured for calling `services` at `target`.

    Safe methods of `services` (see `service_config`) are retried on UNAVAILABLE. Every unary
    call made without `timeout=` gets `timeout_s`, whatever its service; streaming calls have
    only the deadline they pass (none without `timeout=`). Every call forwards the current
    request id as `x-request-id` (see `CallDefaultsChannel`) and, when tracing is on, the
    trace context.

    Args:
        target: `host:port` of the server (or any gRPC target string).
        *services: Descriptors of the services to be called over this channel.
        timeout_s: Default deadline for each call, in seconds, retries included.
    """
    unique = {service.full_name: service for service in services}.values()
    configs = [config for service in unique for config in _method_configs(service, None)]
    options: list[tuple[str, Any]] = [("grpc.enable_retries", 1)]
    if configs:
        options.append(("grpc.service_config", json.dumps({"methodConfig": configs})))
    channel = grpc.aio.insecure_channel(
        target, options=options, interceptors=telemetry.client_interceptors()
    )
    return CallDefaultsChannel(channel, timeout_s)


def _with_request_id(metadata: _Metadata | None) -> _Metadata | None:
    """`metadata` plus the current request id, unless it has one or no RPC is being served."""
    request_id = current_request_id()
    if not request_id:
        return metadata
    if metadata is None:
        return ((REQUEST_ID_KEY, request_id),)
    if any(key == REQUEST_ID_KEY for key, _ in metadata):
        return metadata
    return (*metadata, (REQUEST_ID_KEY, request_id))


class CallDefaultsChannel(grpc.aio.Channel):
    """A channel whose calls carry the current request id, and unary calls a default deadline.

    The defaults are filled in as the call is made, in the caller's task: unlike a grpc.aio
    client interceptor, which runs every call in a task of its own, this adds no task and no
    callbacks (bench/RESULTS.md, "Outgoing calls"). Streaming calls keep the `timeout=` they
    pass, none by default, as they had under the interceptor this replaces (grpc.aio ignored
    its deadline on streams): long-lived streams such as the agent's StreamMentions rely on it.

    Args:
        channel: The channel the calls go out on; closed with this one.
        timeout_s: Deadline for unary calls made without `timeout=`.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float) -> None:
        self._channel = channel
        self._timeout_s = timeout_s

    async def __aenter__(self) -> CallDefaultsChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._channel.close()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.UnaryUnaryMultiCallable[Any, Any]:
        inner = self._channel.unary_unary(  # type: ignore[call-arg]
            method, request_serializer, response_deserializer, _registered_method
        )
        return _UnaryUnary(inner, self._timeout_s)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.UnaryStreamMultiCallable[Any, Any]:
        inner = self._channel.unary_stream(  # type: ignore[call-arg]
            method, request_serializer, response_deserializer, _registered_method
        )
        return _UnaryStream(inner)

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.StreamUnaryMultiCallable[Any, Any]:
        inner = self._channel.stream_unary(  # type: ignore[call-arg]
            method, request_serializer, response_deserializer, _registered_method
        )
        return _StreamUnary(inner)

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.StreamStreamMultiCallable[Any, Any]:
        inner = self._channel.stream_stream(  # type: ignore[call-arg]
            method, request_serializer, response_deserializer, _registered_method
        )
        return _StreamStream(inner)


class _UnaryUnary(grpc.aio.UnaryUnaryMultiCallable[Any, Any]):
    __slots__ = ("_inner", "_timeout_s")

    def __init__(self, inner: grpc.aio.UnaryUnaryMultiCallable[Any, Any], timeout_s: float):
        self._inner = inner
        self._timeout_s = timeout_s

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        return self._inner(
            request,
            timeout=self._timeout_s if timeout is None else timeout,
            metadata=_with_request_id(metadata),
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _UnaryStream(grpc.aio.UnaryStreamMultiCallable[Any, Any]):
    __slots__ = ("_inner",)

    def __init__(self, inner: grpc.aio.UnaryStreamMultiCallable[Any, Any]):
        self._inner = inner

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.UnaryStreamCall[Any, Any]:
        return self._inner(
            request,
            timeout=timeout,
            metadata=_with_request_id(metadata),
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _StreamUnary(grpc.aio.StreamUnaryMultiCallable[Any, Any]):
    __slots__ = ("_inner",)

    def __init__(self, inner: grpc.aio.StreamUnaryMultiCallable[Any, Any]):
        self._inner = inner

    def __call__(
        self,
        request_iterator: _Requests = None,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.StreamUnaryCall[Any, Any]:
        return self._inner(
            request_iterator,
            timeout=timeout,
            metadata=_with_request_id(metadata),
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _StreamStream(grpc.aio.StreamStreamMultiCallable[Any, Any]):
    __slots__ = ("_inner",)

    def __init__(self, inner: grpc.aio.StreamStreamMultiCallable[Any, Any]):
        self._inner = inner

    def __call__(
        self,
        request_iterator: _Requests = None,
        timeout: float | None = None,
        metadata: _Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.StreamStreamCall[Any, Any]:
        return self._inner(
            request_iterator,
            timeout=timeout,
            metadata=_with_request_id(metadata),
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )
