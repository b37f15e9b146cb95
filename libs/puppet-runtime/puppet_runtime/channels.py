"""Outgoing channels: deadlines and retry policy derived from the proto, request-id propagation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from puppet_runtime import telemetry
from puppet_runtime.interceptors import REQUEST_ID_KEY, current_request_id

__all__ = ["RETRY_POLICY", "open_channel", "service_config"]

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


def _method_configs(service: ServiceDescriptor, timeout_s: float) -> list[dict[str, Any]]:
    timeout = _duration(timeout_s)
    safe = [
        {"service": service.full_name, "method": method.name}
        for method in service.methods
        if method.GetOptions().idempotency_level in _SAFE
    ]
    configs: list[dict[str, Any]] = [{"name": [{"service": service.full_name}], "timeout": timeout}]
    if safe:
        configs.insert(0, {"name": safe, "timeout": timeout, "retryPolicy": RETRY_POLICY})
    return configs


def service_config(service: ServiceDescriptor, *, timeout_s: float) -> str:
    """The gRPC service config (JSON) for calling `service`.

    Every method gets `timeout_s` as its deadline. Methods the proto marks
    `idempotency_level = NO_SIDE_EFFECTS` or `IDEMPOTENT` are retried on UNAVAILABLE only.

    Args:
        service: Descriptor of the service, e.g. `pb.DESCRIPTOR.services_by_name["X"]`.
        timeout_s: Deadline for each call, in seconds (retries included).
    """
    return json.dumps({"methodConfig": _method_configs(service, timeout_s)})


def open_channel(
    target: str, *services: ServiceDescriptor, timeout_s: float = 10.0
) -> grpc.aio.Channel:
    """Open an insecure aio channel configured for calling `services` at `target`.

    The service config merges every service's method configs (see `service_config`) plus a
    default deadline for any other method. Client interceptors forward the current request id
    as `x-request-id` and, when tracing is on, the trace context.

    Args:
        target: `host:port` of the server (or any gRPC target string).
        *services: Descriptors of the services to be called over this channel.
        timeout_s: Deadline for each call, in seconds, unless the call passes `timeout=`.
    """
    unique = {service.full_name: service for service in services}.values()
    configs = [config for service in unique for config in _method_configs(service, timeout_s)]
    configs.append({"name": [{}], "timeout": _duration(timeout_s)})
    options = [
        ("grpc.service_config", json.dumps({"methodConfig": configs})),
        ("grpc.enable_retries", 1),
    ]
    interceptors: list[grpc.aio.ClientInterceptor] = [
        *telemetry.client_interceptors(),
        RequestIdClientInterceptor(),
    ]
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


class RequestIdClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds the id of the RPC being served (if any) as `x-request-id` to outgoing calls."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request)

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request)

    async def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(_with_request_id(client_call_details), request_iterator)


def _with_request_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    request_id = current_request_id()
    if not request_id:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if metadata.get(REQUEST_ID_KEY) is not None:
        return details
    metadata.add(REQUEST_ID_KEY, request_id)
    return grpc.aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=metadata,
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )
