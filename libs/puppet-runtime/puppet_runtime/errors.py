"""Typed service errors that the server interceptor turns into rich gRPC statuses."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from puppet_runtime import paging

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


MAX_REQUEST_ID = 128
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31


class FieldChecks:
    """Collects field violations while a request is validated; `done()` raises them all at once.

    Holds the checks every service needs (lengths, ranges, patterns, request ids, paging,
    timestamps); services subclass it with their own. A bad request gets one INVALID_ARGUMENT
    naming every bad field, never just the first.
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

    def required(self, field: str, present: bool) -> None:
        """`field` must be set."""
        if not present:
            self.fail(field, "is required")

    def text(self, field: str, value: str, *, low: int = 0, high: int) -> str:
        """A string of `low`..`high` characters."""
        if not low <= len(value) <= high:
            self.fail(field, f"must be {low}-{high} characters, got {len(value)}")
        return value

    def number(self, field: str, value: float, low: float, high: float) -> float:
        """A finite number in [low, high]; a bad one comes back clamped so checks can go on."""
        if not math.isfinite(value) or not low <= value <= high:
            self.fail(field, f"must be a number from {low:g} to {high:g}, got {value!r}")
            return min(max(value, low), high) if math.isfinite(value) else low
        return float(value)

    def pattern(
        self, field: str, value: str, regex: re.Pattern[str], what: str, *, optional: bool = False
    ) -> str:
        """`value` matches `regex` in full (an empty value passes when `optional`)."""
        if (value or not optional) and not regex.fullmatch(value):
            self.fail(field, f"must be {what}, got {value[:80]!r}")
        return value

    def request_id(self, field: str, value: str) -> str | None:
        """An optional idempotency key of at most 128 characters; None when empty."""
        self.text(field, value, high=MAX_REQUEST_ID)
        return value or None

    def page_size(
        self,
        field: str,
        value: int,
        *,
        default: int = paging.DEFAULT_PAGE_SIZE,
        maximum: int = paging.MAX_PAGE_SIZE,
    ) -> int:
        """A page size; 0 means `default` and anything above `maximum` is capped."""
        if value < 0:
            self.fail(field, "must not be negative")
        return default if value <= 0 else min(value, maximum)

    def page_token(self, field: str, query: str, token: str) -> Any:
        """The position inside a page token issued for the same `query`; None when empty."""
        if not token:
            return None
        try:
            return paging.decode(query, token)
        except ValueError as err:
            self.fail(field, str(err))
            return None

    def timestamp(self, field: str, ts: timestamp_pb2.Timestamp) -> int:
        """A valid protobuf Timestamp (years 1-9999), as microseconds since the epoch."""
        if not MIN_SECONDS <= ts.seconds <= MAX_SECONDS or not 0 <= ts.nanos < 1_000_000_000:
            self.fail(field, "is not a valid timestamp")
            return 0
        return ts.seconds * 1_000_000 + ts.nanos // 1_000
