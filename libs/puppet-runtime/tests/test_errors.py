"""Errors on the wire: ServiceError -> code + ErrorInfo (+ BadRequest); the rest -> INTERNAL."""

import logging
import math
import re

import grpc
import pytest
from google.protobuf import timestamp_pb2
from puppet_runtime import FieldChecks, InvalidArgument, NotFound, invalid_field, paging
from puppet_runtime.testing import status_of


async def test_service_error_has_code_and_error_info(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Echo", "not-found:t1")
    code, info, bad_request = status_of(caught.value)
    assert code is grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Thing 't1' does not exist."
    assert info is not None
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "THING_NOT_FOUND",
        "demo.puppet",
        {"name": "t1"},
    )
    assert bad_request is None


async def test_invalid_field_carries_bad_request(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Echo", "invalid")
    code, info, bad_request = status_of(caught.value)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "thing.size: must be positive"
    assert info is not None
    assert bad_request is not None
    assert (info.reason, dict(info.metadata)) == ("INVALID_FIELD", {"field": "thing.size"})
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("thing.size", "must be positive")
    ]


async def test_unexpected_exception_is_bare_internal_and_logged(call, caplog):
    caplog.set_level(logging.ERROR, logger="puppet_runtime.interceptors")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Echo", "boom")
    code, info, bad_request = status_of(caught.value)
    assert (code, caught.value.details()) == (grpc.StatusCode.INTERNAL, "internal error")
    assert (info, bad_request) == (None, None)
    leaked = f"{caught.value.details()} {caught.value.debug_error_string()}"
    assert "hunter2" not in leaked
    assert "Traceback" not in leaked
    [record] = [r for r in caplog.records if r.exc_info]
    assert "/demo.v1.DemoService/Echo" in record.getMessage()
    assert "hunter2" in str(record.exc_info[1])


async def test_streaming_error_after_messages_is_mapped(call):
    stream = call("Count", "boom-after:2")
    assert [(await stream.read()).value, (await stream.read()).value] == ["0", "1"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "internal error",
    )


async def test_streaming_service_error_is_mapped(call):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call("Count", "not-found-after:0").read()
    code, info, _ = status_of(caught.value)
    assert info is not None
    assert code is grpc.StatusCode.NOT_FOUND
    assert (info.reason, info.domain) == ("THING_NOT_FOUND", "demo.puppet")


async def test_streaming_success(call):
    assert [item.value async for item in call("Count", "3")] == ["0", "1", "2"]


def test_invalid_field_shape():
    err = invalid_field("memory.importance", "must be in [0, 1]", reason="BAD_IMPORTANCE")
    assert (err.code, err.reason, err.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "BAD_IMPORTANCE",
        "memory.importance: must be in [0, 1]",
    )
    assert err.metadata == {"field": "memory.importance"}
    assert [(v.field, v.description) for v in err.violations] == [
        ("memory.importance", "must be in [0, 1]")
    ]


def test_to_status_packs_rich_details():
    status = NotFound("X_NOT_FOUND", "no x", {"name": "x"}).to_status("x.puppet")
    assert (status.code, status.details) == (grpc.StatusCode.NOT_FOUND, "no x")
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert isinstance(value, bytes)


def test_field_checks_collect_every_bad_field_then_raise_once():
    checks = FieldChecks()
    checks.required("agent", False)
    assert checks.text("name", "x" * 5, low=1, high=4) == "xxxxx"
    assert checks.number("weight", math.nan, 0, 1) == 0
    assert checks.number("weight2", 7, 0, 1) == 1
    checks.pattern("handle", "bad handle", re.compile(r"[a-z]+"), "lowercase letters")
    checks.pattern("optional", "", re.compile(r"[a-z]+"), "lowercase letters", optional=True)
    assert checks.request_id("request_id", "r" * 129) == "r" * 129
    assert checks.page_size("page_size", -1) == paging.DEFAULT_PAGE_SIZE
    assert checks.page_token("page_token", "q", "not-a-token") is None
    assert checks.timestamp("at", timestamp_pb2.Timestamp(seconds=10**12)) == 0
    fields = [v.field for v in checks.violations]
    assert fields == [
        "agent",
        "name",
        "weight",
        "weight2",
        "handle",
        "request_id",
        "page_size",
        "page_token",
        "at",
    ]
    with pytest.raises(InvalidArgument) as caught:
        checks.done()
    assert caught.value.reason == "INVALID_FIELD"


def test_field_checks_accept_good_values():
    checks = FieldChecks()
    assert checks.request_id("request_id", "") is None
    assert checks.page_size("page_size", 0) == paging.DEFAULT_PAGE_SIZE
    assert checks.page_size("page_size", 10**6) == paging.MAX_PAGE_SIZE
    token = paging.encode("q", {"after": 3})
    assert checks.page_token("page_token", "q", token) == {"after": 3}
    assert checks.timestamp("at", timestamp_pb2.Timestamp(seconds=2, nanos=5_000)) == 2_000_005
    checks.done()
