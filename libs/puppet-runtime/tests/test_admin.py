"""AdminGuard through the wire: token required, constant-time match, loopback-only without one."""

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import wrappers_pb2
from puppet_runtime.admin import AdminGuard, is_loopback
from puppet_runtime.testing import serve_servicer, status_of
from pydantic import SecretStr

TOKEN = "s3cret-admin-token"


def _handler(guard: AdminGuard) -> grpc.GenericRpcHandler:
    async def admin(request: wrappers_pb2.StringValue, context: Any) -> Any:
        guard.check(context, "Admin")
        return wrappers_pb2.StringValue(value="ok")

    method = grpc.unary_unary_rpc_method_handler(
        admin,
        request_deserializer=wrappers_pb2.StringValue.FromString,
        response_serializer=wrappers_pb2.StringValue.SerializeToString,
    )
    return grpc.method_handlers_generic_handler("demo.Admin", {"Do": method})


async def _call(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        do = channel.unary_unary(
            "/demo.Admin/Do",
            request_serializer=wrappers_pb2.StringValue.SerializeToString,
            response_deserializer=wrappers_pb2.StringValue.FromString,
        )
        reply = await do(wrappers_pb2.StringValue(), metadata=metadata, timeout=5)
        value: str = reply.value
        return value


def _serve(guard: AdminGuard) -> Any:
    return serve_servicer(lambda server: server.add_generic_rpc_handlers([_handler(guard)]))


@pytest.fixture
async def with_token() -> AsyncIterator[int]:
    async with _serve(AdminGuard(SecretStr(TOKEN), "0.0.0.0")) as port:
        yield port


async def test_right_token_passes(with_token):
    assert await _call(with_token, (("authorization", f"Bearer {TOKEN}"),)) == "ok"


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)],
    ids=["missing", "wrong", "no-bearer"],
)
async def test_missing_or_wrong_token_is_unauthenticated(with_token, metadata):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(with_token, metadata)
    code, info, _ = status_of(caught.value)
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert info is not None
    assert info.reason == "ADMIN_TOKEN_REQUIRED"
    assert info.metadata["operation"] == "Admin"
    assert TOKEN not in (caught.value.details() or "")


async def test_no_token_allows_loopback_servers_only():
    async with _serve(AdminGuard(None, "127.0.0.1")) as port:
        assert await _call(port) == "ok"
    async with _serve(AdminGuard(SecretStr(""), "0.0.0.0")) as port:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _call(port)
        info = status_of(caught.value)[1]
        assert info is not None
        assert info.reason == "ADMIN_TOKEN_REQUIRED"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback
