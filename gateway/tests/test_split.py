"""Native gRPC through Envoy: weighted split, pinning, a dying canary, live weight changes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from puppet_runtime.testing import load_sibling

harness = load_sibling(__file__, "harness")


async def test_grpc_split_matches_weight_within_3_points(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(
        tmp_path, [stable.address], [canary.address], canary_percent=30
    )
    envoy = await start_gateway(settings)
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        tally = await harness.drive(channel, 2000)
    assert tally.errors == []
    assert abs(tally.share(canary.address) - 30) <= 3, tally.hosts


async def test_x_canary_pins_a_request(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(
        tmp_path, [stable.address], [canary.address], canary_percent=50
    )
    envoy = await start_gateway(settings)
    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        always = await harness.drive(channel, 200, metadata=[("x-canary", "always")])
        never = await harness.drive(channel, 200, metadata=[("x-canary", "never")])
    assert always.hosts == {canary.address: 200}
    assert never.hosts == {stable.address: 200}


async def test_killed_canary_costs_no_errors_after_5_seconds(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(
        tmp_path, [stable.address], [canary.address], canary_percent=50
    )
    envoy = await start_gateway(settings)
    killed_at: list[float] = []

    async def kill_midway(i: int) -> None:
        if i == 500:
            killed_at.append(asyncio.get_running_loop().time())
            await canary.kill()

    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        before = await harness.drive(channel, 1000, on_progress=kill_midway)
        await asyncio.sleep(max(0.0, killed_at[0] + 5 - asyncio.get_running_loop().time()))
        after = await harness.drive(channel, 1000)
    assert before.hosts[canary.address] > 0
    assert after.errors == []
    assert after.hosts == {stable.address: 1000}


async def test_weight_changes_under_load_drop_nothing(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(tmp_path, [stable.address], [canary.address])
    envoy = await start_gateway(settings)
    steps = iter([1, 5, 25, 50, 100, 0, 50])

    async def shift(i: int) -> None:
        if i % 300 == 150 and (step := next(steps, None)) is not None:
            envoy.set_weights({"memory": step})

    async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
        tally: Any = await harness.drive(channel, 2400, on_progress=shift)
        assert tally.errors == []
        assert tally.hosts[canary.address] > 200  # the 100% step really reached the canary
        await asyncio.sleep(0.5)
        last = await harness.drive(channel, 400)
    assert abs(last.share(canary.address) - 50) <= 10, last.hosts
