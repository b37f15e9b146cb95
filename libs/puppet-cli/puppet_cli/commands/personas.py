"""`puppet personas`, `puppet persona <id>` and `puppet force-post <persona>` (AgentService)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.struct_pb2 import Value
from puppet.agent.v1 import agent_pb2 as a
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.agent.v1 import agent_service_pb2_grpc as rpc

from puppet_cli import output
from puppet_cli.config import Config
from puppet_cli.rpc import connect, run

AGENT = pb.DESCRIPTOR.services_by_name["AgentService"]
PAGE_SIZE = 1000
"""ListAgents' maximum page."""


def epoch_ms(value: Value) -> str:
    """A "number or null" epoch-milliseconds Value as a UTC time, or "never"."""
    if value.WhichOneof("kind") != "number_value":
        return "never"
    moment = datetime.fromtimestamp(value.number_value / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def nullable(value: Value) -> str:
    """A "string or number or null" Value as text; null (or unset) is "-"."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return f"{value.number_value:g}"
    return "-"


def mood(value: a.Mood) -> str:
    """Mood as `valence +0.10, arousal 0.30, dominance 0.50`."""
    return (
        f"valence {value.valence:+.2f}, arousal {value.arousal:.2f}, "
        f"dominance {value.dominance:.2f}"
    )


def state(runtime: a.AgentRuntime | None) -> str:
    """`running`, `paused` or `-` (unknown)."""
    if runtime is None or runtime.state == a.AGENT_STATE_UNSPECIFIED:
        return "-"
    return a.AgentState.Name(runtime.state).removeprefix("AGENT_STATE_").lower()


async def _list(config: Config) -> tuple[list[a.AgentSummary], dict[str, a.AgentRuntime]]:
    agents: list[a.AgentSummary] = []
    runtimes: dict[str, a.AgentRuntime] = {}
    async with connect(config, "agent", AGENT) as channel:
        stub = rpc.AgentServiceStub(channel)
        token = ""
        while True:
            reply = await stub.ListAgents(
                pb.ListAgentsRequest(page_size=PAGE_SIZE, page_token=token)
            )
            agents.extend(reply.agents)
            token = reply.next_page_token
            if not token:
                break
        while True:
            states = await stub.ListAgentRuntimes(
                pb.ListAgentRuntimesRequest(page_size=PAGE_SIZE, page_token=token)
            )
            runtimes.update((r.agent.removeprefix("agents/"), r) for r in states.runtimes)
            token = states.next_page_token
            if not token:
                return agents, runtimes


def personas(config: Config, *, as_json: bool) -> None:
    """List every persona (AgentService.ListAgents and ListAgentRuntimes, all pages)."""
    agents, runtimes = run(_list(config))
    if as_json:
        output.emit_json(
            [{**output.as_dict(agent), "state": state(runtimes.get(agent.id))} for agent in agents]
        )
        return
    rows = [
        (
            agent.id,
            agent.name,
            state(runtimes.get(agent.id)),
            mood(agent.mood),
            epoch_ms(agent.last_post_time),
        )
        for agent in agents
    ]
    output.show(output.table("Personas", "id", "name", "state", "mood", "last post", rows=rows))


async def _get(config: Config, agent_id: str) -> tuple[pb.GetAgentResponse, a.AgentRuntime]:
    async with connect(config, "agent", AGENT) as channel:
        stub = rpc.AgentServiceStub(channel)
        got = await stub.GetAgent(pb.GetAgentRequest(agent_id=agent_id))
        runtime = await stub.GetAgentRuntime(pb.GetAgentRuntimeRequest(agent_id=agent_id))
        return got, runtime.runtime


def persona(config: Config, agent_id: str, *, as_json: bool) -> None:
    """Show one persona (AgentService.GetAgent and GetAgentRuntime)."""
    got, runtime = run(_get(config, agent_id))
    if as_json:
        output.emit_json({**output.as_dict(got), "runtime": output.as_dict(runtime)})
        return
    frequency = got.behavior.post_frequency
    patterns = got.behavior.interaction_patterns
    rows = [
        ("id", got.id),
        ("name", got.name),
        ("description", got.description or "-"),
        ("traits", ", ".join(got.personality.traits) or "-"),
        ("interests", ", ".join(got.personality.interests) or "-"),
        ("voice", got.style_guide.voice or "-"),
        ("tone", got.style_guide.tone or "-"),
        ("state", state(runtime)),
        ("mood", mood(got.current_mood)),
        ("last post", epoch_ms(got.last_post_time)),
        ("next post", output.stamp(runtime.next_post_time)),
        (
            "posts every",
            f"{frequency.min_hours_between_posts:g}-{frequency.max_hours_between_posts:g} h",
        ),
        (
            "reacts",
            f"reply {patterns.reply_probability:g}, quote {patterns.quote_tweet_probability:g},"
            f" like {patterns.like_probability:g}",
        ),
    ]
    output.show(output.table(f"Persona {got.id}", "field", "value", rows=rows))


async def _force_post(
    config: Config, agent_id: str, topic: str, request_id: str
) -> pb.CreatePostResponse:
    request = pb.CreatePostRequest(
        agent_id=agent_id, topic=topic, force=True, request_id=request_id
    )
    async with connect(config, "agent", AGENT) as channel:
        return await rpc.AgentServiceStub(channel).CreatePost(request, metadata=config.metadata())


def force_post(
    config: Config, agent_id: str, *, topic: str, request_id: str | None, as_json: bool
) -> None:
    """Make a persona post now, even if it posted recently (AgentService.CreatePost, force)."""
    key = request_id or f"cli-{uuid.uuid4().hex}"
    reply = run(_force_post(config, agent_id, topic, key))
    if as_json:
        output.emit_json({**output.as_dict(reply), "requestId": key})
        return
    tweet_id = nullable(reply.tweet_id)
    where = f"post id {tweet_id}" if tweet_id != "-" else "accepted, not sent yet"
    output.show(f"{reply.agent_id} posted ({where}): {reply.content}")
