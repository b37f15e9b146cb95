"""Wire AgentService: choose the store, open the clients, load persona files, run the lives."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc
from puppet.social.v1 import social_pb2
from puppet_runtime import ServiceError, ServiceSpec, run

from puppet_agent.clients import Clients
from puppet_agent.fleet import Fleet
from puppet_agent.leases import LeaseStore
from puppet_agent.personas import load_dir, stored_copy
from puppet_agent.runner import Runner
from puppet_agent.servicer import AgentServicer
from puppet_agent.settings import AgentSettings
from puppet_agent.store import AgentStore

log = logging.getLogger(__name__)


def open_store(settings: AgentSettings) -> AgentStore:
    if settings.store == "mongo":
        from puppet_agent.store.mongo import MongoStore

        assert settings.mongo_uri is not None  # enforced by AgentSettings
        return MongoStore(settings.mongo_uri.get_secret_value(), settings.mongo_database)
    from puppet_agent.store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "agent.sqlite3")


def open_lease_store(settings: AgentSettings) -> LeaseStore:
    if settings.store == "mongo":
        from puppet_agent.leases.mongo import MongoLeaseStore

        assert settings.mongo_uri is not None  # enforced by AgentSettings
        return MongoLeaseStore(settings.mongo_uri.get_secret_value(), settings.mongo_database)
    from puppet_agent.leases.sqlite import SqliteLeaseStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteLeaseStore(settings.data_dir / "leases.sqlite3")


def open_clients(settings: AgentSettings) -> Clients:
    network = social_pb2.NETWORK_X if settings.social_network == "x" else social_pb2.NETWORK_SANDBOX
    return Clients.open(
        memory_addr=settings.memory_addr,
        llm_addr=settings.llm_addr,
        social_addr=settings.social_addr,
        chain_addr=settings.chain_addr,
        chain_admin_token=(
            settings.chain_admin_token.get_secret_value() if settings.chain_admin_token else None
        ),
        network=network,
        timeout_s=settings.request_timeout_s,
        state_ttl_s=settings.state_cache_s,
    )


async def load_persona_files(fleet: Fleet, directory: Path) -> list[str]:
    """Persona files into the store: new ones, and files newer than the stored copy.

    A bad file, or one that cannot be registered now, is logged and skipped, never fatal.
    """
    loaded, _ = load_dir(directory)
    done = []
    for item in loaded:
        record = await fleet.store.get_persona(item.persona.id)
        if record is not None and (
            record.config == stored_copy(item.raw)
            or item.path.stat().st_mtime <= record.update_time
        ):
            continue
        try:
            await fleet.put_persona(item.raw)
        except ServiceError as err:
            log.error("persona file %s not loaded: %s", item.path, err.message)
            continue
        done.append(item.persona.id)
    return done


@dataclass
class Agent:
    """Every long-lived part of the service, started and stopped together."""

    settings: AgentSettings
    fleet: Fleet
    runner: Runner

    async def start(self) -> None:
        if self.fleet.opened is None:
            self.fleet.attach(open_clients(self.settings))
        await self.fleet.store.open()
        if self.settings.agents_dir is not None and self.settings.agents_dir.is_dir():
            await load_persona_files(self.fleet, self.settings.agents_dir)
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        if self.fleet.opened is not None:
            await self.fleet.opened.close()
        await self.fleet.store.close()


def compose(
    settings: AgentSettings, store: AgentStore | None = None, clients: Clients | None = None
) -> Agent:
    fleet = Fleet(
        store or open_store(settings),
        clients,
        provider=settings.llm_provider,
        recall_top_k=settings.recall_top_k,
        schedule_scale=settings.schedule_scale,
    )
    runner = Runner(
        fleet,
        settings,
        leases=open_lease_store(settings) if settings.run_lives else None,
        replica_id=settings.replica_id or f"{socket.gethostname()}-{os.getpid()}",
    )
    fleet.life = runner
    return Agent(settings, fleet, runner)


def build(settings: AgentSettings, agent: Agent | None = None) -> ServiceSpec:
    agent = agent or compose(settings)
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    return ServiceSpec(
        domain="agent.puppet",
        services=[pb.DESCRIPTOR.services_by_name["AgentService"]],
        register=lambda server: rpc.add_AgentServiceServicer_to_server(
            AgentServicer(agent.fleet, token), server
        ),
        on_startup=[agent.start],
        on_shutdown=[agent.stop],
    )


def main() -> None:
    settings = AgentSettings()  # the only place env is read
    run(build(settings), settings)
