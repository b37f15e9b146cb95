"""Fixtures: a real social service (sandbox network) on port 0, and the CLI run in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from puppet.social.v1 import social_pb2 as s
from puppet.social.v1 import social_service_pb2 as pb
from puppet.social.v1 import social_service_pb2_grpc as rpc
from puppet_runtime.testing import load_sibling, running
from puppet_social.server import build
from typer.testing import Result

helpers = load_sibling(__file__, "helpers")

Invoke = Callable[..., Coroutine[Any, Any, Result]]


@dataclass
class Social:
    """A running social service: its address and an async stub for arranging and checking."""

    address: str
    stub: rpc.SocialServiceAsyncStub

    async def sandbox_account(self, account_id: str, handle: str, *agents: str) -> s.Account:
        request = pb.CreateAccountRequest(
            account_id=account_id,
            account=s.Account(network=s.NETWORK_SANDBOX, handle=handle, agents=agents),
        )
        return (await self.stub.CreateAccount(request)).account


@pytest.fixture
async def social(tmp_path: Path) -> AsyncIterator[Social]:
    config = helpers.social_settings(tmp_path / "social")
    async with running(build(config), config) as (started, channel):
        yield Social(f"127.0.0.1:{started.port}", rpc.SocialServiceStub(channel))


@pytest.fixture
def cli(social: Social) -> Invoke:
    """`await cli(*args)`: the CLI pointed at the social fixture; every other service is down."""
    addresses = {name: helpers.nowhere() for name in ("agent", "memory", "llm", "chain")}
    addresses["social"] = social.address

    async def invoke(*args: str) -> Result:
        result: Result = await helpers.invoke_cli(addresses, *args)
        return result

    return invoke
