"""The canary controller on a real Envoy: a failing canary rolled back, a good one promoted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from puppet_gateway.controller import AutoPolicy, Controller, EnvoyAdmin
from puppet_runtime.testing import load_sibling
from typer.testing import CliRunner

harness = load_sibling(__file__, "harness")


@contextlib.asynccontextmanager
async def steady_load(target: str) -> AsyncIterator[Any]:
    """GetPersona through Envoy in the background until the block ends."""
    stop = asyncio.Event()
    tallies: list[Any] = []

    async def loop() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            while not stop.is_set():
                tallies.append(await harness.drive(channel, 100, concurrency=4))

    task = asyncio.create_task(loop())
    try:
        yield tallies
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def controller_for(envoy: Any, log: Path) -> AsyncIterator[Controller]:
    admin = EnvoyAdmin(envoy.admin_url)
    try:
        yield Controller(admin, envoy.runtime, log)
    finally:
        await admin.close()


async def test_auto_rolls_back_a_canary_failing_half_its_calls_within_10_s(tmp_path, start_gateway):
    async with (
        harness.memory_instance(tmp_path / "stable") as stable,
        harness.memory_instance(tmp_path / "canary", [harness.FailEvery(2)]) as canary,
    ):
        settings = harness.gateway_settings(
            tmp_path, [stable.address], [canary.address], canary_percent=25
        )
        envoy = await start_gateway(settings)
        log = tmp_path / "decisions.jsonl"
        async with controller_for(envoy, log) as controller, steady_load(envoy.grpc_target):
            started = time.monotonic()
            decisions = await controller.auto(
                "memory", AutoPolicy(window_s=30, poll_s=0.5), max_duration_s=10
            )
            elapsed = time.monotonic() - started
            assert [d.action for d in decisions] == ["rollback"]
            assert elapsed < 10
            await asyncio.sleep(0.3)
            assert await controller.weight("memory") == 0
    record = json.loads(log.read_text().splitlines()[-1])
    assert (record["action"], record["from_percent"], record["to_percent"]) == ("rollback", 25, 0)
    assert record["evidence"]["canary_success_rate"] < 0.95
    assert "success rate" in record["reason"]


async def test_auto_promotes_a_healthy_canary_one_step(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(
        tmp_path, [stable.address], [canary.address], canary_percent=25
    )
    envoy = await start_gateway(settings)
    log = tmp_path / "decisions.jsonl"
    async with controller_for(envoy, log) as controller, steady_load(envoy.grpc_target) as load:
        decisions = await controller.auto(
            "memory",
            AutoPolicy(window_s=2, poll_s=0.5, min_requests=10, p95_budget_ms=1000),
            max_duration_s=3.5,
        )
        await asyncio.sleep(0.3)
        assert await controller.weight("memory") == 50
    assert [(d.action, d.from_percent, d.to_percent) for d in decisions] == [("promote", 25, 50)]
    assert decisions[0].evidence["canary_requests"] >= 10
    assert all(t.errors == [] for t in load)


async def test_cli_against_envoy(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(tmp_path, [stable.address], [canary.address])
    envoy = await start_gateway(settings)
    common = [
        "--admin-url",
        envoy.admin_url,
        "--runtime-root",
        str(settings.runtime_root),
        "--decision-log",
        str(tmp_path / "log.jsonl"),
    ]
    from puppet_gateway.cli import app

    runner = CliRunner()

    def invoke(*args: str) -> str:
        result = runner.invoke(app, [*args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    assert "0% -> 1%" in await asyncio.to_thread(invoke, "promote", "memory")
    assert "1% -> 50%" in await asyncio.to_thread(invoke, "set", "memory", "50")
    assert "50% -> 0%" in await asyncio.to_thread(invoke, "rollback", "memory")
    shown = await asyncio.to_thread(invoke, "status", "memory", "--sample-s", "0.2")
    assert "memory" in shown
    assert "req/s" in shown
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3


async def test_auto_opens_a_canary_at_0_with_the_first_step(tmp_path, memory_pair, start_gateway):
    stable, canary = memory_pair
    settings = harness.gateway_settings(tmp_path, [stable.address], [canary.address])
    envoy = await start_gateway(settings)
    async with controller_for(envoy, tmp_path / "log.jsonl") as controller:
        decisions = await controller.auto("memory", AutoPolicy(window_s=60), max_duration_s=0.5)
    assert [(d.action, d.from_percent, d.to_percent) for d in decisions] == [("promote", 0, 1)]


async def test_weights_through_the_admin_layer_when_the_disk_layer_is_read_only(
    tmp_path, memory_pair, start_gateway
):
    stable, canary = memory_pair
    settings = harness.gateway_settings(tmp_path, [stable.address], [canary.address])
    envoy = await start_gateway(settings)
    admin = EnvoyAdmin(envoy.admin_url)
    try:
        controller = Controller(admin, None, tmp_path / "log.jsonl")
        decision = await controller.set("memory", 100)
        assert (decision.from_percent, decision.to_percent) == (0, 100)
        async with grpc.aio.insecure_channel(envoy.grpc_target) as channel:
            tally = await harness.drive(channel, 50)
        assert tally.hosts == {canary.address: 50}
        assert envoy.runtime.read() == {}  # the disk layer was not touched
    finally:
        await admin.close()
