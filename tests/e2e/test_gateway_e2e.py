"""End to end through Envoy only: services and gateway as `python -m` processes, as in `up`.

Two memory services (stable and canary) and `python -m puppet_gateway`; every call goes through
Envoy, weights move with the `puppet canary` CLI, and every process must exit 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


class Processes:
    """Subprocesses started by a test, stopped with SIGTERM (exit codes kept)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, module: str, env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> dict[str, int]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {name: proc.wait(timeout=30) for name, proc in self.procs.items()}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


def _memory_env(port: int, data: Path) -> dict[str, str]:
    return {
        "PUPPET_MEMORY_PORT": str(port),
        "PUPPET_MEMORY_DATA_DIR": str(data),
        "PUPPET_MEMORY_DRAIN_S": "0",
        "PUPPET_MEMORY_LOG_LEVEL": "WARNING",
        # No model to load: these calls never embed, so the embedder is never reached.
        "PUPPET_MEMORY_EMBEDDER": "openai",
        "PUPPET_MEMORY_OPENAI_API_KEY": "unused",
        "PUPPET_MEMORY_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }


async def _wait(condition_name: str, probe: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if await probe():  # type: ignore[operator]
                return
        except (grpc.aio.AioRpcError, httpx.HTTPError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(condition_name)
        await asyncio.sleep(0.1)


async def _answered_by(channel: grpc.aio.Channel, n: int) -> Counter[str]:
    stub = rpc.MemoryServiceStub(channel)
    hosts: Counter[str] = Counter()
    for _ in range(n):
        call = stub.GetPersona(pb.GetPersonaRequest(name="agents/e2e"), timeout=5)
        await call
        hosts[str(dict(await call.initial_metadata())["x-upstream-host"])] += 1
    return hosts


def _canary_cli(*args: str, admin: str, runtime: Path, log: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "puppet_gateway.cli", *args],
        env={
            **os.environ,
            "PUPPET_GATEWAY_ADMIN_URL": admin,
            "PUPPET_GATEWAY_RUNTIME_ROOT": str(runtime),
            "PUPPET_GATEWAY_DECISION_LOG": str(log),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_grpc_through_envoy_with_live_canary_weights(tmp_path, processes):
    stable, canary = free_port(), free_port()
    gateway, admin_port = free_port(), free_port()
    processes.start("stable", "puppet_memory", _memory_env(stable, tmp_path / "stable"))
    processes.start("canary", "puppet_memory", _memory_env(canary, tmp_path / "canary"))
    data = tmp_path / "gateway"
    processes.start(
        "gateway",
        "puppet_gateway",
        {
            "PUPPET_GATEWAY_PORT": str(gateway),
            "PUPPET_GATEWAY_ADMIN_PORT": str(admin_port),
            "PUPPET_GATEWAY_DATA_DIR": str(data),
            "PUPPET_GATEWAY_DESCRIPTOR": str(tmp_path / "build" / "agent.binpb"),
            "PUPPET_GATEWAY_MEMORY_ADDR": f"127.0.0.1:{stable}",
            "PUPPET_GATEWAY_MEMORY_CANARY_ADDR": f"127.0.0.1:{canary}",
            # The other services point at ports nobody serves, never at a suite `up` may be
            # running on the default ports.
            **{
                f"PUPPET_GATEWAY_{svc}_ADDR": f"127.0.0.1:{free_port()}"
                for svc in ("AGENT", "LLM", "SOCIAL", "CHAIN")
            },
        },
    )
    admin = f"http://127.0.0.1:{admin_port}"
    async with (
        httpx.AsyncClient(base_url=admin, timeout=2) as envoy_admin,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway}") as channel,
    ):

        async def both_healthy() -> bool:
            text = (await envoy_admin.get("/clusters")).text
            flags = [line for line in text.splitlines() if "::health_flags::" in line]
            memory = [line for line in flags if line.startswith(("memory_stable", "memory_canary"))]
            return len(memory) == 2 and all(line.endswith("::healthy") for line in memory)

        await _wait("memory stable and canary healthy in envoy", both_healthy)
        for pin in ("never", "always"):
            await rpc.MemoryServiceStub(channel).CreatePersona(
                pb.CreatePersonaRequest(persona_id="e2e", allow_existing=True),
                metadata=(("x-canary", pin),),
                timeout=5,
            )
        assert await _answered_by(channel, 50) == {f"127.0.0.1:{stable}": 50}

        cli = {"admin": admin, "runtime": data / "runtime" / "current", "log": tmp_path / "d.jsonl"}
        assert "0% -> 100%" in await asyncio.to_thread(_canary_cli, "set", "memory", "100", **cli)
        assert await _answered_by(channel, 50) == {f"127.0.0.1:{canary}": 50}
        assert "100% -> 0%" in await asyncio.to_thread(_canary_cli, "rollback", "memory", **cli)
        assert await _answered_by(channel, 50) == {f"127.0.0.1:{stable}": 50}

        # No AgentService runs here: the REST answer is Envoy's, in the legacy error shape.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway}") as client:
            rest = await client.get("/api/status")
        assert rest.status_code == 503
        assert "error" in rest.json()
    assert processes.stop() == {"stable": 0, "canary": 0, "gateway": 0}
