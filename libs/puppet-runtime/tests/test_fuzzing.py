"""The fuzz kit: strategies build any request, serve_in_thread serves it, call_sync reports."""

from typing import Any

import grpc
from google.protobuf import field_mask_pb2, struct_pb2, wrappers_pb2
from hypothesis import given
from hypothesis import settings as examples
from puppet_runtime.testing import (
    build_message,
    call_sync,
    fuzz_scalars,
    message_values,
    serve_in_thread,
)


@examples(max_examples=30, deadline=None)
@given(values=message_values(struct_pb2.Struct.DESCRIPTOR))
def test_maps_and_nested_messages_build(values: dict[str, Any]) -> None:
    built = build_message(struct_pb2.Struct, values)
    assert isinstance(built, struct_pb2.Struct)


@examples(max_examples=30, deadline=None)
@given(
    values=message_values(
        field_mask_pb2.FieldMask.DESCRIPTOR, fuzz_scalars(["a.b", "c"], huge=["z" * 300])
    )
)
def test_repeated_scalars_build(values: dict[str, Any]) -> None:
    built = build_message(field_mask_pb2.FieldMask, values)
    assert list(built.paths) == values.get("paths", [])


def _echo(channel: grpc.Channel) -> Any:
    return channel.unary_unary(
        "/demo.v1.DemoService/Echo",
        request_serializer=wrappers_pb2.StringValue.SerializeToString,
        response_deserializer=wrappers_pb2.StringValue.FromString,
    )


def test_serve_in_thread_and_call_sync(demo: Any, settings: Any) -> None:
    with serve_in_thread(lambda: demo.build(), settings) as port:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            ok = call_sync(_echo(channel), wrappers_pb2.StringValue(value="hi"))
            assert ok.ok
            bad = call_sync(_echo(channel), wrappers_pb2.StringValue(value="invalid"))
            assert bad.code is grpc.StatusCode.INVALID_ARGUMENT
            assert bad.info is not None
            assert bad.fields == ["thing.size"]
        finally:
            channel.close()
