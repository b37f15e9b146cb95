"""Telemetry switches and log formats (the full JSON path runs in test_process.py)."""

import json
import logging
import sys

import pytest
from puppet_runtime import client_interceptors, configure_tracing, server_interceptors
from puppet_runtime.telemetry import JsonFormatter


@pytest.mark.parametrize("value", [None, "none"])
def test_tracing_stays_off_without_otel_env(monkeypatch, value):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    if value is None:
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", value)
    assert configure_tracing("puppet-test") is False
    assert server_interceptors() == []
    assert client_interceptors() == []


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("puppet.x", logging.ERROR, __file__, 1, "got %s", ("it",), None)
    record.__dict__.update(extra)
    return record


def test_json_line_has_fields_ids_and_extras():
    entry = json.loads(
        JsonFormatter().format(_record(request_id="r1", trace_id="", code="NOT_FOUND"))
    )
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "puppet.x", "got it")
    assert (entry["request_id"], entry["code"]) == ("r1", "NOT_FOUND")
    assert "trace_id" not in entry
    assert entry["ts"].endswith("+00:00")


def test_json_line_carries_the_traceback():
    try:
        raise ValueError("bad")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: bad" in entry["exc_info"]
    assert "\n" not in JsonFormatter().format(record)
