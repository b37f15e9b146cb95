"""Logging (JSON or text), OpenTelemetry tracing on demand, and the Prometheus endpoint."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from prometheus_client import start_http_server

from puppet_runtime.interceptors import current_request_id

__all__ = [
    "client_interceptors",
    "configure_logging",
    "configure_tracing",
    "server_interceptors",
    "shutdown_tracing",
    "start_metrics_server",
]

log = logging.getLogger(__name__)

_HEALTH = "grpc.health.v1.Health"
# Attributes every LogRecord has; anything else was passed with `extra=` and is logged too.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "trace_id",
    "span_id",
}
_provider: TracerProvider | None = None


class _ContextFilter(logging.Filter):
    """Stamps the request id and the active span's ids onto every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else ""
        record.span_id = format(span.span_id, "016x") if span.is_valid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, ids, extras, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "trace_id", "span_id"):
            value = getattr(record, key, "")
            if value:
                entry[key] = value
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRS)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class _TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - stdlib name
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """Send every log record to stdout as JSON lines or text; replaces earlier handlers.

    Args:
        level: Root level name, e.g. `INFO`.
        fmt: `json` (containers) or `text` (terminals).
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)


def configure_tracing(service_name: str) -> bool:
    """Install a TracerProvider when the standard OTel environment asks for one.

    Tracing is on only when `OTEL_TRACES_EXPORTER` (`otlp`, `console`; `none` disables) or
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set. `OTEL_SERVICE_NAME` wins over `service_name`.

    Args:
        service_name: The `service.name` resource attribute to use by default.

    Returns:
        Whether tracing is on.
    """
    global _provider
    processors = _processors_from_env()
    if not processors:
        return False
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on: %s", os.environ.get("OTEL_TRACES_EXPORTER", "otlp"))
    return True


def shutdown_tracing() -> None:
    """Flush and stop the TracerProvider installed by `configure_tracing`, if any."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _processors_from_env() -> list[SpanProcessor]:
    names = os.environ.get("OTEL_TRACES_EXPORTER")
    if names is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        )
        names = "otlp" if endpoint else ""
    processors: list[SpanProcessor] = []
    for name in (n.strip().lower() for n in names.split(",")):
        if name == "console":
            exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
            processors.append(SimpleSpanProcessor(exporter))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter,
            )

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        elif name not in ("", "none"):
            log.warning("OTEL_TRACES_EXPORTER %r is not supported; use otlp or console", name)
    return processors


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The OTel aio server interceptor, health excluded; `[]` when tracing is off.

    Health is filtered out in the constructor: the interceptor breaks the aio health `Watch`
    (open-telemetry/opentelemetry-python-contrib#3066).
    """
    if _provider is None:
        return []
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=_provider, filter_=filters.negate(filters.service_name(_HEALTH))
    )
    return [interceptor]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """OTel aio client interceptors (health calls skipped); `[]` when tracing is off."""
    if _provider is None:
        return []
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
        tracer_provider=_provider, filter_=filters.negate(filters.health_check())
    )
    return interceptors


def start_metrics_server(host: str, port: int) -> None:
    """Serve Prometheus `/metrics` on `host:port` from a daemon thread.

    Args:
        host: Address to bind.
        port: Port to bind.
    """
    start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, port)
