"""personas, persona, force-post, event, status and mention against the real agent service."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from puppet.agent.v1 import agent_service_pb2 as pb
from puppet.social.v1 import social_service_pb2 as spb
from puppet_runtime.testing import load_sibling

helpers = load_sibling(__file__, "helpers")
suite_kit = load_sibling(__file__, "suite")


@pytest.fixture
async def suite(tmp_path: Path) -> AsyncIterator[Any]:
    async with suite_kit.running_suite(tmp_path, helpers.nowhere()) as started:
        yield started


async def cli(suite: Any, *args: str) -> Any:
    return await helpers.invoke_cli(suite.addresses, *args)


async def test_status_with_the_agent_up(suite) -> None:
    await suite.create_persona("coby-agent")
    table = await cli(suite, "status")
    assert table.exit_code == 1, table.output  # chain is down
    cells = [[c.strip() for c in line.split("│")] for line in table.stdout.splitlines()]
    rows = {row[1]: row[3] for row in cells if len(row) == 5}
    assert rows == {
        "agent": "SERVING",
        "memory": "SERVING",
        "llm": "SERVING",
        "social": "SERVING",
        "chain": "DOWN",
    }
    assert "agent: online, 1 personas, up " in table.stdout
    report = json.loads((await cli(suite, "status", "--json")).stdout)
    assert (report["agent"]["status"], report["agent"]["agents"]) == ("online", 1)


async def test_personas_and_persona(suite) -> None:
    await suite.create_persona("coby-agent")
    await suite.create_persona("test-grok-agent")
    table = await cli(suite, "personas")
    assert table.exit_code == 0, table.output
    assert "coby-agent" in table.stdout
    assert "test-grok-agent" in table.stdout
    assert "never" in table.stdout  # no post yet
    listed = json.loads((await cli(suite, "personas", "--json")).stdout)
    assert [(p["id"], p["state"]) for p in listed] == [
        ("coby-agent", "running"),
        ("test-grok-agent", "running"),
    ]
    assert listed[0]["mood"] == {"valence": 0.0, "arousal": 0.0, "dominance": 0.5}
    one = await cli(suite, "persona", "coby-agent")
    assert one.exit_code == 0, one.output
    assert "Coby" in one.stdout
    assert "valence +0.00, arousal 0.00, dominance 0.50" in one.stdout
    detail = json.loads((await cli(suite, "persona", "coby-agent", "--json")).stdout)
    assert (detail["id"], detail["name"]) == ("coby-agent", "Coby")
    assert detail["runtime"]["state"] == "AGENT_STATE_RUNNING"
    await suite.agent.PauseAgent(pb.PauseAgentRequest(agent_id="coby-agent"))
    paused = await cli(suite, "persona", "coby-agent")
    cells = [[c.strip() for c in line.split("│")] for line in paused.stdout.splitlines()]
    assert ["", "state", "paused", ""] in cells, paused.stdout


async def test_unknown_persona_is_one_line(suite) -> None:
    for args in (["persona", "nobody"], ["force-post", "nobody"]):
        done = await cli(suite, *args)
        assert done.exit_code == 1, done.output
        [line] = done.stderr.splitlines()
        assert line.startswith("error: agent NOT_FOUND, reason AGENT_NOT_FOUND"), line
    bad = await cli(suite, "persona", "Not An Id")
    [line] = bad.stderr.splitlines()
    assert line.startswith("error: agent INVALID_ARGUMENT, reason INVALID_FIELD, field agent_id")


async def test_force_post_posts_even_when_too_soon(suite) -> None:
    await suite.create_persona("test-grok-agent")
    first = await cli(suite, "force-post", "test-grok-agent", "--topic", "tea")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("test-grok-agent posted (post id ")
    second = await cli(suite, "force-post", "test-grok-agent", "--json")
    assert second.exit_code == 0, second.output
    reply = json.loads(second.stdout)
    assert reply["agentId"] == "test-grok-agent"
    assert reply["requestId"].startswith("cli-")
    timeline = await suite.social.ListPosts(spb.ListPostsRequest(parent="accounts/test-grok-agent"))
    assert len(timeline.posts) == 2
    assert timeline.posts[0].text == reply["content"]
    again = await cli(suite, "force-post", "test-grok-agent", "--request-id", reply["requestId"])
    assert again.exit_code == 0, again.output  # the same key: nothing new is posted
    timeline = await suite.social.ListPosts(spb.ListPostsRequest(parent="accounts/test-grok-agent"))
    assert len(timeline.posts) == 2


async def test_event_now_and_later(suite) -> None:
    await suite.create_persona("coby-agent")
    now = await cli(
        suite, "event", "news", "--data", "headline=Tea prices soar", "--target", "coby-agent"
    )
    assert now.exit_code == 0, now.output
    assert now.stdout.startswith("event ")
    assert "(news) queued now" in now.stdout
    later = await cli(
        suite, "event", "mood_shift", "--data", "valenceShift=0.4", "--delay", "1h", "--json"
    )
    assert later.exit_code == 0, later.output
    receipt = json.loads(later.stdout)
    assert receipt["scheduled"] is True
    assert receipt["event"]["type"] == "mood_shift"
    assert receipt["event"]["executeAfter"].endswith("Z")
    twice = [
        json.loads((await cli(suite, "event", "x", "--request-id", "e-1", "--json")).stdout)
        for _ in range(2)
    ]
    assert twice[0]["event"]["id"] == twice[1]["event"]["id"]
    refused = await cli(suite, "event", "news", "--priority", "urgent")
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: agent INVALID_ARGUMENT, reason INVALID_FIELD, field priority")


async def test_mention_reaches_a_persona_the_agent_registered(suite) -> None:
    await suite.create_persona("test-grok-agent")
    made = await cli(suite, "force-post", "test-grok-agent")  # registers its social account
    assert made.exit_code == 0, made.output
    done = await cli(suite, "mention", "test-grok-agent", "are you there?", "--json")
    assert done.exit_code == 0, done.output
    [text] = json.loads(done.stdout)["texts"]
    account = await suite.social.GetAccount(spb.GetAccountRequest(name="accounts/test-grok-agent"))
    assert text == f"@{account.account.handle} are you there?"
    deadline = time.monotonic() + 10
    while True:
        got = await suite.social.ListMentions(
            spb.ListMentionsRequest(parent="accounts/test-grok-agent")
        )
        if got.mentions or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [m.post.text for m in got.mentions] == [text]
