"""`puppet status`: the health of every service and, when the agent is up, its GetStatus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from puppet.agent.v1 import agent_service_pb2 as agent_pb
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from rich.text import Text

from puppet_cli import output
from puppet_cli.config import SERVICES, Config
from puppet_cli.rpc import ServiceFailed, connect, run

AGENT = agent_pb.DESCRIPTOR.services_by_name["AgentService"]
HEALTH_TIMEOUT_S = 3.0
"""Longest wait for one health answer; a service slower than this is shown as down."""


@dataclass(frozen=True)
class Health:
    """One service's health as `puppet status` shows it."""

    service: str
    address: str
    status: str
    """SERVING, NOT_SERVING, SERVICE_UNKNOWN, DOWN (no answer) or another status code name."""


async def check(config: Config, service: str) -> Health:
    """Ask `service` for grpc.health.v1 Check of the whole server (no retries)."""
    address = config.address(service)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(), timeout=min(config.timeout_s, HEALTH_TIMEOUT_S)
            )
        except grpc.aio.AioRpcError as err:
            down = err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            return Health(service, address, "DOWN" if down else err.code().name)
    return Health(service, address, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def _status(config: Config) -> tuple[list[Health], dict[str, Any] | None, str | None]:
    healths = list(await asyncio.gather(*(check(config, name) for name in SERVICES)))
    agent_up = any(h.service == "agent" and h.status == "SERVING" for h in healths)
    if not agent_up:
        return healths, None, None
    try:
        async with connect(config, "agent", AGENT) as channel:
            reply = await agent_rpc.AgentServiceStub(channel).GetStatus(agent_pb.GetStatusRequest())
    except ServiceFailed as failed:
        return healths, None, failed.line()
    return healths, output.as_dict(reply), None


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def status(config: Config, *, as_json: bool) -> int:
    """Show every service's health; the exit code is 0 only when all of them are SERVING."""
    healths, agent, agent_error = run(_status(config))
    if as_json:
        output.emit_json(
            {
                "services": {
                    h.service: {"address": h.address, "health": h.status} for h in healths
                },
                "agent": agent,
            }
        )
    else:
        colour = {"SERVING": "green", "DOWN": "red"}
        rows = [
            (h.service, h.address, Text(h.status, style=colour.get(h.status, "yellow")))
            for h in healths
        ]
        output.show(output.table("Services", "service", "address", "health", rows=rows))
        if agent is not None:
            output.show(
                f"agent: {agent['status']}, {agent['agents']} personas, "
                f"up {_uptime(float(agent['uptime']))}"
            )
    if agent_error is not None:
        output.fail(agent_error)
    serving = all(h.status == "SERVING" for h in healths)
    return 0 if serving and agent_error is None else 1
