"""Outgoing channels: retry policy from the proto, a deadline on every call, request ids."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from puppet_runtime import telemetry
from puppet_runtime.interceptors import REQUEST_ID_KEY, current_request_id

__all__ = ["RETRY_POLICY", "CallDefaultsInterceptor", "open_channel", "service_config"]

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

    Safe methods of `services` (see `service_config`) are retried on UNAVAILABLE. Every call
    made without `timeout=` gets `timeout_s`, whatever its service; streams that must outlive
    it pass their own `timeout=`. Client interceptors also forward the current request id as
    `x-request-id` and, when tracing is on, the trace context.

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
    interceptors: list[grpc.aio.ClientInterceptor] = [
        *telemetry.client_interceptors(),
        CallDefaultsInterceptor(timeout_s),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


class CallDefaultsInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Gives every outgoing call a deadline and the current request id.

    Args:
        timeout_s: Deadline for calls made without `timeout=`.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._complete(client_call_details), request)

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self._complete(client_call_details), request)

    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._complete(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._complete(client_call_details), request_iterator)

    def _complete(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = current_request_id()
        if request_id and metadata.get(REQUEST_ID_KEY) is None:
            metadata.add(REQUEST_ID_KEY, request_id)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=self._timeout_s if details.timeout is None else details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )
