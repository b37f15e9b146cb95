"""Test kit: the agent and the services it calls (memory, llm, social) in-process on port 0.

One set-up for every suite that drives the real AgentService: the agent's own tests, the CLI's
and the gateway's legacy-parity e2e; also `python -m puppet_agent` as a process against it, and
the waits and error checks the agent's tests share. It lives with the agent because it wires
the agent's settings; memory, llm and social are its dev dependencies (see the agent's
pyproject), so the image, built without dev dependencies, never imports this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from puppet.agent.v1 import agent_service_pb2_grpc as agent_rpc
from puppet.social.v1 import social_service_pb2 as spb
from puppet.social.v1 import social_service_pb2_grpc as social_rpc
from puppet_llm.server import build as build_llm
from puppet_llm.settings import LlmSettings
from puppet_memory.server import build as build_memory
from puppet_memory.settings import MemorySettings
from puppet_runtime import ServiceSettings, ServiceSpec, started_server
from puppet_runtime.testing import free_port, status_of, wait_serving
from puppet_social.server import build as build_social
from puppet_social.settings import SocialSettings

from puppet_agent.server import Agent, build, compose
from puppet_agent.settings import AgentSettings

if TYPE_CHECKING:
    from puppet.agent.v1.agent_service_pb2_grpc import AgentServiceAsyncStub
    from puppet.social.v1 import social_pb2
    from puppet.social.v1.social_service_pb2_grpc import SocialServiceAsyncStub
    from puppet_llm.providers import Provider

QUIET: Mapping[str, Any] = {"port": 0, "drain_s": 0, "shutdown_grace_s": 0, "log_format": "text"}
"""Settings every test server shares: any free port, no drain, no grace, text logs."""

FAST_SOCIAL: Mapping[str, Any] = {
    "default_tier": "unlimited",
    "outbox_interval_s": 0.05,
    "mention_poll_interval_s": 0.05,
}
"""Social's settings by default: no rate limit, and the outbox and mentions polled at once."""


PERSONAS_DIR = Path(__file__).resolve().parents[3] / "config" / "agents"
"""The shipped persona files (config/agents in the repository)."""

SLOW_POSTS: Mapping[str, Any] = {"min_hours_between_posts": 100, "max_hours_between_posts": 200}
"""A post_frequency that never comes due during a test."""


def persona_dict(
    file: str = "test-grok-agent",
    /,
    *,
    post_frequency: Mapping[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The shipped persona `file` (config/agents/<file>.json) as a dict, a fresh copy each call.

    Args:
        file: The persona file's name without `.json`.
        post_frequency: If given, replaces `behavior.post_frequency` whole.
        **changes: Top-level keys to replace (`id`, `name`, ...).
    """
    raw: dict[str, Any] = json.loads((PERSONAS_DIR / f"{file}.json").read_text())
    raw.update(changes)
    if post_frequency is not None:
        raw["behavior"]["post_frequency"] = dict(post_frequency)
    return raw


def struct(raw: Mapping[str, Any]) -> struct_pb2.Struct:
    """A persona (any JSON object) as the Struct that CreateAgent and ReplaceAgent take."""
    out = struct_pb2.Struct()
    out.update(raw)
    return out


def persona(
    file: str = "test-grok-agent",
    /,
    *,
    post_frequency: Mapping[str, Any] | None = None,
    **changes: Any,
) -> struct_pb2.Struct:
    """`persona_dict(...)` as a Struct, ready for CreateAgentRequest(persona=...)."""
    return struct(persona_dict(file, post_frequency=post_frequency, **changes))


class HashingEmbedder:
    """The memory service's embedder port, filled by word hashing: no model needed."""

    model = "test/hashing-64"
    dimension = 64

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or [text]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dimension)
        return out

    async def close(self) -> None:
        return None


@dataclass
class Suite:
    """The running suite: addresses (agent, memory, llm, social) and what drives the agent."""

    addresses: dict[str, str]
    agent: AgentServiceAsyncStub
    social: SocialServiceAsyncStub
    core: Agent
    settings: AgentSettings


@asynccontextmanager
async def running_suite(
    data_dir: Path,
    *,
    provider: Provider | None = None,
    social_settings: Mapping[str, Any] = FAST_SOCIAL,
    **agent_settings: Any,
) -> AsyncIterator[Suite]:
    """Memory (hashing embedder), llm (fake provider), social (sandbox) and the agent, wired.

    Args:
        data_dir: Each service keeps its data in a folder of its name below it.
        provider: Answers every llm call (a scripted FakeProvider, say); None leaves the llm
            service's default provider, `fake`.
        social_settings: Social's settings besides QUIET and its data dir.
        **agent_settings: AgentSettings that replace the kit's (agents_dir=None, lives not run,
            random_seed=11, the addresses of the three services).
    """
    async with AsyncExitStack() as stack:

        async def serve(spec: ServiceSpec, settings: ServiceSettings) -> str:
            started = await stack.enter_async_context(started_server(spec, settings, port=0))
            return f"127.0.0.1:{started.port}"

        memory = MemorySettings(**QUIET, data_dir=data_dir / "memory")
        llm = LlmSettings(
            **QUIET, data_dir=data_dir / "llm", default_provider="fake", random_seed=7
        )
        social = SocialSettings(**QUIET, data_dir=data_dir / "social", **social_settings)
        addresses = {
            "memory": await serve(build_memory(memory, embedder=HashingEmbedder()), memory),
            "llm": await serve(build_llm(llm, provider=provider), llm),
            "social": await serve(build_social(social), social),
        }
        values: dict[str, Any] = {
            **QUIET,
            "memory_addr": addresses["memory"],
            "llm_addr": addresses["llm"],
            "social_addr": addresses["social"],
            "data_dir": data_dir / "agent",
            "agents_dir": None,
            "llm_provider": "default",
            "run_lives": False,
            "random_seed": 11,
            **agent_settings,
        }
        settings = AgentSettings(**values)
        core = compose(settings)
        addresses = {"agent": await serve(build(settings, core), settings), **addresses}
        agent_channel = await stack.enter_async_context(
            grpc.aio.insecure_channel(addresses["agent"])
        )
        social_channel = await stack.enter_async_context(
            grpc.aio.insecure_channel(addresses["social"])
        )
        yield Suite(
            addresses,
            agent_rpc.AgentServiceStub(agent_channel),
            social_rpc.SocialServiceStub(social_channel),
            core,
            settings,
        )


@asynccontextmanager
async def agent_process(
    suite: Suite, log: Path, **settings: str | float | Path
) -> AsyncIterator[tuple[AgentServiceAsyncStub, asyncio.subprocess.Process]]:
    """`python -m puppet_agent` on a free port, set up from env as a pod is, until it serves.

    The env gives the suite's memory, llm and social addresses, the default llm provider, no
    drain and text logs, then `PUPPET_AGENT_<NAME>` for each of `settings`. Output goes to
    `log`, which is also the process's working folder. Leaving sends SIGTERM (unless the process
    has ended) and waits for the exit: `proc.returncode` is its code.
    """
    port = free_port()
    env = {
        **os.environ,
        "PUPPET_AGENT_PORT": str(port),
        "PUPPET_AGENT_MEMORY_ADDR": suite.settings.memory_addr,
        "PUPPET_AGENT_LLM_ADDR": suite.settings.llm_addr,
        "PUPPET_AGENT_SOCIAL_ADDR": suite.settings.social_addr,
        "PUPPET_AGENT_LLM_PROVIDER": "default",
        "PUPPET_AGENT_DRAIN_S": "0",
        "PUPPET_AGENT_LOG_FORMAT": "text",
        **{f"PUPPET_AGENT_{name.upper()}": str(value) for name, value in settings.items()},
    }
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "puppet_agent",
            env=env,
            cwd=log.parent,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                await wait_serving(channel, timeout_s=30)
            except TimeoutError:
                raise AssertionError((await asyncio.to_thread(log.read_text))[-3000:]) from None
            yield agent_rpc.AgentServiceStub(channel), proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


async def fails(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str, field: str | None = None
) -> error_details_pb2.ErrorInfo:
    """Await `call`: it must fail with `code` and the agent's `reason`, naming `field` if given."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        failed = err
    else:
        raise AssertionError(f"the call succeeded; expected {code.name} {reason}")
    got, info, bad = status_of(failed)
    assert got is code, failed.details()
    assert info is not None
    assert (info.domain, info.reason) == ("agent.puppet", reason)
    if field is not None:
        assert bad is not None
        assert field in [v.field for v in bad.field_violations], bad
    return info


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 8.0) -> Any:
    """What `check` returns once it is truthy, polling every 50 ms for up to `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = await check()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def sent_post_id(suite: Suite, item: social_pb2.OutboxItem) -> str:
    """The network id of an outbox item's post once sent (the first attempt may be queued)."""
    for _ in range(200):
        if item.posts:
            return str(item.posts[0].rsplit("/", 1)[-1])
        await asyncio.sleep(0.02)
        item = (await suite.social.GetOutboxItem(spb.GetOutboxItemRequest(name=item.name))).item
    raise AssertionError(f"never sent: {item}")
