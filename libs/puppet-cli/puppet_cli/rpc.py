"""Channels to the services, and every failure turned into one clear line and exit code 1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import grpc
import typer
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import error_details_pb2, status_pb2
from puppet_runtime import open_channel

from puppet_cli import output
from puppet_cli.config import Config

__all__ = ["Failure", "ServiceFailed", "abort", "connect", "describe", "run"]

T = TypeVar("T")

_DETAILS_KEY = "grpc-status-details-bin"


class Failure(Exception):
    """Something the operator must read: shown as one line on stderr, then exit 1."""

    def line(self) -> str:
        """The line to show."""
        return f"error: {self}"


class ServiceFailed(Failure):
    """A call to a service failed; carries what the rich status says.

    Args:
        service: Service name ("social", "agent", ...).
        address: The address that was called.
        code: The gRPC status code.
        reason: `ErrorInfo.reason`, when the service sent one.
        field: The first `BadRequest` field violation's field, when there is one.
        message: The status message (or a plainer one for transport failures).
    """

    def __init__(
        self,
        service: str,
        address: str,
        code: grpc.StatusCode,
        reason: str | None,
        field: str | None,
        message: str,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.address = address
        self.code = code
        self.reason = reason
        self.field = field
        self.message = message

    def line(self) -> str:
        parts = [f"error: {self.service} {self.code.name}"]
        if self.reason:
            parts.append(f"reason {self.reason}")
        if self.field:
            parts.append(f"field {self.field}")
        return f"{', '.join(parts)}: {self.message}"


def describe(err: grpc.aio.AioRpcError, service: str, address: str) -> ServiceFailed:
    """Read a failed call's status, ErrorInfo and BadRequest into a ServiceFailed."""
    reason: str | None = None
    field: str | None = None
    for key, value in err.trailing_metadata() or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason or None
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    field = bad.field_violations[0].field
    code = err.code()
    message = err.details() or code.name
    if reason is None and code is grpc.StatusCode.UNAVAILABLE:
        message = f"cannot reach {address} (is the {service} service running?)"
    elif reason is None and code is grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"no answer from {address} in time"
    elif reason is None and code is grpc.StatusCode.UNIMPLEMENTED:
        message = f"{address} does not serve this call (is it the {service} service?)"
    return ServiceFailed(service, address, code, reason, field, " ".join(message.split()))


@asynccontextmanager
async def connect(
    config: Config, service: str, *descriptors: ServiceDescriptor
) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to `service` (puppet_runtime.channels: deadlines, retries of safe methods).

    A failed call inside the block leaves it as ServiceFailed naming the service.

    Args:
        config: Addresses and the per-call deadline.
        service: Service name, a key of `config.addresses`.
        descriptors: The services to be called, for their retry policies.
    """
    address = config.address(service)
    async with open_channel(address, *descriptors, timeout_s=config.timeout_s) as channel:
        try:
            yield channel
        except grpc.aio.AioRpcError as err:
            raise describe(err, service, address) from None


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a Failure becomes its line on stderr and exit code 1."""
    try:
        return asyncio.run(work)
    except Failure as failure:
        abort(failure)


def abort(failure: Failure) -> NoReturn:
    """Show the failure's line on stderr and end the command with exit code 1."""
    output.fail(failure.line())
    raise typer.Exit(1)
