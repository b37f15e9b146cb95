"""python -m puppet_agent boots from env, loads config/agents, serves, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc
from puppet_runtime.testing import free_port, wait_serving

REPO = Path(__file__).resolve().parents[3]


async def test_module_boots_loads_persona_files_and_stops_cleanly(
    suite: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_AGENT_PORT": str(port),
        "PUPPET_AGENT_MEMORY_ADDR": suite.settings.memory_addr,
        "PUPPET_AGENT_LLM_ADDR": suite.settings.llm_addr,
        "PUPPET_AGENT_SOCIAL_ADDR": suite.settings.social_addr,
        "PUPPET_AGENT_DATA_DIR": str(tmp_path / "agent"),
        "PUPPET_AGENT_AGENTS_DIR": str(REPO / "config" / "agents"),
        "PUPPET_AGENT_LLM_PROVIDER": "default",
        "PUPPET_AGENT_RUN_LIVES": "false",
        "PUPPET_AGENT_DRAIN_S": "0",
        "PUPPET_AGENT_LOG_FORMAT": "text",
    }
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "puppet_agent",
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                await wait_serving(channel, timeout_s=30)
            except TimeoutError:
                raise AssertionError(log.read_text()[-3000:]) from None
            stub = rpc.AgentServiceStub(channel)
            status = await stub.GetStatus(pb.GetStatusRequest())
            assert status.agents == len(list((REPO / "config" / "agents").glob("*.json")))
            listed = await stub.ListAgents(pb.ListAgentsRequest())
            assert [a.id for a in listed.agents][:2] == ["claudia-agent", "coby-agent"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()[-3000:]
