"""Three replicas share the personas through leases; a killed replica's personas move on."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from puppet.agent.v1 import agent_service_pb2 as pb
from puppet_agent.testing import SLOW_POSTS, agent_process, persona

TTL_S = 3.0  # short for a quick test, long enough that a busy CI machine keeps its leases


@asynccontextmanager
async def replica(suite: Any, data: Path, name: str) -> AsyncIterator[tuple[Any, Any]]:
    (data / "empty").mkdir(exist_ok=True)
    async with agent_process(
        suite,
        data / f"{name}.log",
        data_dir=data,
        agents_dir=data / "empty",
        replica_id=name,
        lease_ttl_s=TTL_S,
    ) as started:
        yield started


async def holders(stub: Any) -> dict[str, str]:
    """Persona id -> the replica holding its lease, as one replica sees the shared leases."""
    listed = await stub.ListAgentRuntimes(pb.ListAgentRuntimesRequest())
    return {r.agent.removeprefix("agents/"): r.replica for r in listed.runtimes}


async def until_shared(stub: Any, names: set[str], timeout_s: float = 30) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        held = await holders(stub)
        if len(held) == 6 and set(held.values()) == names:
            return held
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"leases not shared by {sorted(names)}: {held}")
        await asyncio.sleep(0.2)


async def test_three_replicas_share_personas_and_survive_a_killed_one(
    suite: Any, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(stack.enter_async_context(replica(suite, data, n)) for n in ("r1", "r2", "r3"))
        )
        stubs = {n: s for n, (s, _) in zip(("r1", "r2", "r3"), started, strict=True)}
        for i in range(6):
            await stubs["r1"].CreateAgent(
                pb.CreateAgentRequest(persona=persona(id=f"p{i}", post_frequency=SLOW_POSTS))
            )
        held = await until_shared(stubs["r2"], {"r1", "r2", "r3"})
        # The fair share may still be settling (e.g. 3/2/1 -> 2/2/2): wait for a stable view that
        # two replicas agree on.
        for _ in range(150):
            again, seen_by_r3 = await holders(stubs["r2"]), await holders(stubs["r3"])
            if again == held == seen_by_r3:
                break
            held = await until_shared(stubs["r2"], {"r1", "r2", "r3"})
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"replicas disagree on the leases: {held}")
        killed = started[2][1]
        killed.send_signal(signal.SIGKILL)
        await killed.wait()
        died = asyncio.get_running_loop().time()
        moved = await until_shared(stubs["r1"], {"r1", "r2"})
        # Every persona, the dead replica's included, runs on exactly one live replica again
        # within a few lease periods (one ttl to expire, ttl/3 to notice, slack for a busy CI).
        assert set(moved) == set(held)
        assert asyncio.get_running_loop().time() - died < 4 * TTL_S
