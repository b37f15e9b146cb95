"""REST split legacy ↔ Python through Envoy, shadow mirroring and the shadow diff report.

Python here is a fake AgentService (GetStatus, GetAgent) behind Envoy's transcoder: it proves the
gateway's mechanics. The parity of the real AgentService with the captures waits for that service.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from puppet_gateway.shadow import Replay, compare_json, route_of, shadow_report
from puppet_runtime.testing import load_sibling

harness = load_sibling(__file__, "harness")
standin_module = load_sibling(__file__, "legacy_standin")


@pytest.fixture
def legacy() -> Iterator[Any]:
    standin = standin_module.LegacyStandin().start()
    yield standin
    standin.stop()


async def _start(tmp_path, memory_pair, start_gateway, descriptor, legacy, agent, **kw) -> Any:
    stable, _ = memory_pair
    settings = harness.gateway_settings(
        tmp_path,
        [stable.address],
        legacy_url=legacy.url,
        descriptor=descriptor,
        agent=[agent],
        **kw,
    )
    envoy = await start_gateway(settings)
    await envoy.wait_healthy(["agent_stable", "legacy"])
    return envoy


async def test_rest_split_matches_weight_and_transcodes_only_the_python_share(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    async with harness.fake_agent() as (fake, address):
        envoy = await _start(
            tmp_path, memory_pair, start_gateway, descriptor, legacy, address, python_percent=25
        )
        seen: collections.Counter[str] = collections.Counter()
        async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:

            async def worker(n: int) -> None:
                for _ in range(n):
                    got = await client.get("/api/status")
                    assert got.status_code == 200
                    cluster = got.headers["x-upstream-cluster"]
                    seen[cluster] += 1
                    body = got.json()
                    if cluster == "agent_stable":
                        assert body == {"status": "online", "agents": 1, "uptime": 3.5}
                    else:
                        assert "x-legacy-standin" in got.headers

            await asyncio.gather(*(worker(250) for _ in range(8)))
    assert sum(seen.values()) == 2000
    assert abs(100 * seen["agent_stable"] / 2000 - 25) <= 3, seen
    assert fake.calls["GetStatus"] == seen["agent_stable"]


async def test_shadow_mirrors_reads_to_python_and_answers_from_legacy(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    async with harness.fake_agent() as (fake, address):
        envoy = await _start(
            tmp_path, memory_pair, start_gateway, descriptor, legacy, address, shadow=True
        )
        async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:
            for _ in range(20):
                got = await client.get("/api/status")
                assert got.headers["x-upstream-cluster"] == "legacy"
                assert got.json()["uptime"] == 2.114863674  # the captured legacy answer
            posted = await client.post("/api/agents/coby-agent/mood", json={"shift": 0.1})
            assert posted.headers["x-upstream-cluster"] == "legacy"
        for _ in range(50):  # mirrored requests are fire-and-forget
            if fake.calls["GetStatus"] == 20:
                break
            await asyncio.sleep(0.05)
    assert fake.calls == {"GetStatus": 20}, "reads mirrored, the write not"


async def test_shadow_report_names_the_routes_that_differ(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    async with harness.fake_agent() as (_, address):
        envoy = await _start(tmp_path, memory_pair, start_gateway, descriptor, legacy, address)
        async with httpx.AsyncClient(base_url=envoy.url, timeout=5) as client:
            report = await shadow_report(
                client,
                [
                    Replay("GET", "/api/status"),
                    Replay("GET", "/api/agents/coby-agent"),
                    Replay("GET", "/api/agents/nope-agent"),
                ],
            )
            python = await client.get("/api/agents/nope-agent", headers={"x-canary": "always"})
    # A transcoded gRPC error, readable by a legacy client: `error` as legacy had it.
    assert python.status_code == 404
    assert python.json()["error"] == "Agent not found: nope-agent"
    assert python.json()["code"] == 5
    assert report["GET /api/status"].same
    agent = report["GET /api/agents/{agent_id}"]
    assert agent.requests == 2
    # The fake answers NOT_FOUND for every agent: legacy's 200 for coby-agent is a mismatch,
    # its 404 for nope-agent is not.
    assert agent.status_mismatches == ["/api/agents/coby-agent: legacy 200, python 404"]


def test_compare_json_reports_keys_and_types():
    legacy = {"id": "a", "mood": {"valence": 0.1}, "posts": [{"text": "x"}], "n": 1}
    python = {"id": "a", "mood": {"valence": "0.1"}, "posts": [{"text": "y", "at": 1}], "m": 2}
    assert compare_json(legacy, python) == {
        "$.n: only in legacy",
        "$.m: only in python",
        "$.mood.valence: number in legacy, string in python",
        "$.posts[0].at: only in python",
    }
    assert route_of("GET", "/api/agents/coby-agent/memory?x=1") == (
        "GET /api/agents/{agent_id}/memory"
    )
    assert route_of("POST", "/api/agents") == "POST /api/agents"


async def test_diff_cli_replays_captured_reads_and_exits_1_on_differences(
    tmp_path, memory_pair, start_gateway, descriptor, legacy
):
    from puppet_gateway.cli import app
    from typer.testing import CliRunner

    async with harness.fake_agent() as (fake, address):
        envoy = await _start(tmp_path, memory_pair, start_gateway, descriptor, legacy, address)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["diff", str(standin_module.CAPTURES), "--gateway-url", envoy.url],
        )
    assert result.exit_code == 1, result.output
    assert "/api/status" in result.output
    assert "POST" not in result.output  # writes are not replayed unless asked
    assert fake.calls["GetStatus"] == 2  # 01 and 57: both GET /api/status captures
