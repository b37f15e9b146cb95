"""python -m puppet_agent boots from env, loads config/agents, serves, and exits 0 on SIGTERM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from puppet.agent.v1 import agent_service_pb2 as pb
from puppet_agent.testing import PERSONAS_DIR, agent_process


async def test_module_boots_loads_persona_files_and_stops_cleanly(
    suite: Any, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    async with agent_process(
        suite,
        log,
        data_dir=tmp_path / "agent",
        agents_dir=PERSONAS_DIR,
        run_lives="false",
    ) as (stub, proc):
        status = await stub.GetStatus(pb.GetStatusRequest())
        assert status.agents == len(list(PERSONAS_DIR.glob("*.json")))
        listed = await stub.ListAgents(pb.ListAgentsRequest())
        assert [a.id for a in listed.agents][:2] == ["claudia-agent", "coby-agent"]
    assert proc.returncode == 0, log.read_text()[-3000:]
