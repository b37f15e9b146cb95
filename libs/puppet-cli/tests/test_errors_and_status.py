"""Failures are one clear line and exit 1; `puppet status` reports each service's health."""

from __future__ import annotations

import json
from pathlib import Path

from puppet_runtime.testing import load_sibling, running
from puppet_social.server import build

helpers = load_sibling(__file__, "helpers")
invoke_cli = helpers.invoke_cli
nowhere = helpers.nowhere


async def test_a_stopped_service_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = helpers.social_settings(tmp_path / "social")
    async with running(build(config), config) as (started, _):
        address = f"127.0.0.1:{started.port}"
        up = await invoke_cli({"social": address}, "accounts")
        assert up.exit_code == 0, up.output
    for args in (["accounts"], ["timeline"], ["post", "hello"], ["mention", "coby", "hi"]):
        done = await invoke_cli({"social": address}, *args)
        assert done.exit_code == 1, (args, done.output)
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            f"error: social UNAVAILABLE: cannot reach {address} (is the social service running?)"
        ]


async def test_service_errors_show_status_reason_and_field(social, cli) -> None:
    missing = await cli("post", "hello", "--as", "nobody")
    assert missing.exit_code == 1
    [line] = missing.stderr.splitlines()
    assert line.startswith("error: social NOT_FOUND, reason ACCOUNT_NOT_FOUND")
    assert "accounts/nobody" in line
    too_long = await cli("post", "x" * 300)
    assert too_long.exit_code == 1
    [line] = too_long.stderr.splitlines()
    assert line.startswith("error: social INVALID_ARGUMENT, reason TWEET_TOO_LONG")
    bad_field = await cli("timeline", "--account", "NOT VALID")
    assert bad_field.exit_code == 1
    [line] = bad_field.stderr.splitlines()
    assert line.startswith("error: social INVALID_ARGUMENT, reason INVALID_FIELD, field parent:")
    assert "Traceback" not in too_long.output + missing.output + bad_field.output


async def test_agent_down_is_one_line() -> None:
    agent = nowhere()
    for args in (
        ["personas"],
        ["persona", "coby"],
        ["force-post", "coby"],
        ["event", "news", "--data", "headline=tea"],
    ):
        done = await invoke_cli({"agent": agent}, *args)
        assert done.exit_code == 1, (args, done.output)
        assert done.stderr.splitlines() == [
            f"error: agent UNAVAILABLE: cannot reach {agent} (is the agent service running?)"
        ]


async def test_bad_event_arguments_are_one_line() -> None:
    agent = nowhere()
    bad_data = await invoke_cli({"agent": agent}, "event", "news", "--data", "headline")
    assert bad_data.exit_code == 1
    assert bad_data.stderr.splitlines() == ["error: --data 'headline' is not key=value"]
    bad_delay = await invoke_cli({"agent": agent}, "event", "news", "--delay", "soon")
    assert bad_delay.exit_code == 1
    assert bad_delay.stderr.splitlines() == [
        "error: --delay 'soon' is not a delay like 30s, 5m, 2h or 500ms"
    ]


async def test_status_shows_each_service(social) -> None:
    down = {name: nowhere() for name in ("agent", "memory", "llm", "chain")}
    addresses = {**down, "social": social.address}
    table = await invoke_cli(addresses, "status")
    assert table.exit_code == 1  # not everything serves
    cells = [[c.strip() for c in line.split("│")] for line in table.stdout.splitlines()]
    rows = {row[1]: row[3] for row in cells if len(row) == 5}
    assert rows.get("social") == "SERVING", table.stdout
    assert all(rows.get(name) == "DOWN" for name in down), table.stdout
    as_json = await invoke_cli(addresses, "status", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["agent"] is None
    assert report["services"]["social"] == {"address": social.address, "health": "SERVING"}
    assert report["services"]["chain"] == {"address": down["chain"], "health": "DOWN"}
