"""Typed service errors that the server interceptor turns into rich gRPC statuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldChecks",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "invalid_field",
]


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, reported in `google.rpc.BadRequest`."""

    field: str
    """Path to the field, e.g. `memory.importance`."""
    description: str
    """Why the value is not acceptable, for a human."""


class ServiceError(Exception):
    """Base of every error a servicer raises on purpose.

    The server interceptor aborts the RPC with `code` and a `google.rpc.Status` carrying
    `ErrorInfo{reason, domain, metadata}` (plus `BadRequest` when there are field violations).
    Clients branch on `code` and `reason`, never on `message`.

    Args:
        reason: Stable UPPER_SNAKE identifier of the failure; part of the API.
        message: Human-readable explanation; becomes the gRPC status details.
        metadata: Extra machine-readable facts (e.g. the resource name).
        violations: Field violations, reported as `google.rpc.BadRequest`.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        *,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, {self.message!r}, {self.metadata!r})"

    def to_status(self, domain: str) -> grpc.Status:
        """Pack this error as a `grpc.Status` whose trailers hold the rich `google.rpc.Status`.

        Args:
            domain: The error domain of the service raising it, e.g. `memory.puppet`.
        """
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=domain, metadata=self.metadata
        )
        details = [_pack(info)]
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
            details.append(_pack(bad_request))
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=details)
        result: grpc.Status = rpc_status.to_status(status)
        return result


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


class InvalidArgument(ServiceError):
    """The request is malformed, whatever the state of the system."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(ServiceError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    """The resource the caller tried to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    """The system is not in a state where the operation can run."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ServiceError):
    """A concurrency conflict; the caller may retry the whole read-modify-write."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(ServiceError):
    """A quota or budget is spent."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(ServiceError):
    """The caller did not prove who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(ServiceError):
    """A transient failure; safe methods are retried by clients."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    """The work could not finish in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


def invalid_field(field: str, description: str, reason: str = "INVALID_FIELD") -> InvalidArgument:
    """Build an `InvalidArgument` for one bad field.

    Args:
        field: Path to the field, e.g. `memory.importance`.
        description: Why the value is not acceptable.
        reason: The `ErrorInfo.reason`; defaults to `INVALID_FIELD`.

    Returns:
        An error with one field violation, metadata `{"field": field}` and the message
        `"<field>: <description>"`.
    """
    return InvalidArgument(
        reason,
        f"{field}: {description}",
        {"field": field},
        violations=[FieldViolation(field, description)],
    )


class FieldChecks:
    """Collects field violations while a request is validated; `done()` raises them all at once.

    Services subclass it with their own checks (`text`, `page_size`, ...), so a bad request gets
    one INVALID_ARGUMENT naming every bad field, never just the first.
    """

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def fail(self, field: str, description: str) -> None:
        """Record that `field` is bad."""
        self.violations.append(FieldViolation(field, description))

    def done(self) -> None:
        """Raise INVALID_ARGUMENT (reason INVALID_FIELD) if anything failed."""
        if self.violations:
            raise InvalidArgument(
                "INVALID_FIELD",
                "; ".join(f"{v.field}: {v.description}" for v in self.violations[:10]),
                {"field": self.violations[0].field},
                violations=self.violations,
            )
