"""Shared runtime for every puppet service: boot, errors, channels, telemetry, settings."""

from puppet_runtime.channels import open_channel, service_config
from puppet_runtime.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldChecks,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
    invalid_field,
)
from puppet_runtime.interceptors import current_request_id
from puppet_runtime.server import (
    Context,
    ServiceSpec,
    StartedServer,
    run,
    serve,
    started_server,
)
from puppet_runtime.settings import ServiceSettings
from puppet_runtime.telemetry import (
    client_interceptors,
    configure_logging,
    configure_tracing,
    server_interceptors,
    start_metrics_server,
)

__all__ = [
    "Aborted",
    "AlreadyExists",
    "Context",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldChecks",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceError",
    "ServiceSettings",
    "ServiceSpec",
    "StartedServer",
    "Unauthenticated",
    "Unavailable",
    "client_interceptors",
    "configure_logging",
    "configure_tracing",
    "current_request_id",
    "invalid_field",
    "open_channel",
    "run",
    "serve",
    "server_interceptors",
    "service_config",
    "start_metrics_server",
    "started_server",
]
