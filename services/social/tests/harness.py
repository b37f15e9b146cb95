"""Helpers for SocialService tests through the wire, on the sandbox or on the fake of X."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import load_sibling, running, status_of
from puppet_social.server import build
from puppet_social.settings import SocialSettings

if TYPE_CHECKING:
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub as Stub

    from tests import fake_x
else:
    fake_x = load_sibling(__file__, "fake_x")


def settings(data_dir: Path, **overrides: Any) -> SocialSettings:
    values: dict[str, Any] = {
        "port": 0,
        "data_dir": data_dir,
        "drain_s": 0,
        "shutdown_grace_s": 0,
        "log_format": "text",
        "default_tier": "unlimited",
        "outbox_interval_s": 0.05,
        "mention_poll_interval_s": 0.05,
    }
    values.update(overrides)
    return SocialSettings(**values)


def x_settings(data_dir: Path, fake: fake_x.FakeX, **overrides: Any) -> SocialSettings:
    return settings(data_dir, network="x", x_base_url=fake.base_url, **overrides)


@asynccontextmanager
async def serving(config: SocialSettings) -> AsyncIterator[Stub]:
    """The service on port 0 and a stub on a real channel to it."""
    async with running(build(config), config) as (_, channel):
        yield rpc.SocialServiceStub(channel)


async def x_account(stub: Stub, user: fake_x.User, account_id: str | None = None) -> s.Account:
    """Register the fake's user with its own credentials (verified through GET /2/users/me)."""
    made = await stub.CreateAccount(
        pb.CreateAccountRequest(
            account_id=account_id or user.username,
            account=s.Account(network=s.NETWORK_X),
            credentials=s.XCredentials(
                api_key=user.api_key,
                api_key_secret=user.api_key_secret,
                access_token=user.access_token,
                access_token_secret=user.access_token_secret,
            ),
        )
    )
    return made.account


async def sandbox_account(stub: Stub, account_id: str, handle: str, **fields: Any) -> s.Account:
    made = await stub.CreateAccount(
        pb.CreateAccountRequest(
            account_id=account_id,
            account=s.Account(network=s.NETWORK_SANDBOX, handle=handle, **fields),
        )
    )
    return made.account


async def fails(call: Any, code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    got, info, _ = status_of(caught.value)
    assert got is code, caught.value.details()
    assert info is not None
    assert (info.domain, info.reason) == ("social.puppet", reason)
    return caught.value


async def until_state(
    stub: Stub, name: str, state: int, *, timeout_s: float = 10.0
) -> s.OutboxItem:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        item = (await stub.GetOutboxItem(pb.GetOutboxItemRequest(name=name))).item
        if item.state == state:
            return item
        if loop.time() > deadline:
            raise AssertionError(f"{name} never reached {state}: {item}")
        await asyncio.sleep(0.02)


def post_ids(item: s.OutboxItem) -> list[str]:
    return [name.rsplit("/", 1)[1] for name in item.posts]
