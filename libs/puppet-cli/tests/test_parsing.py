"""The CLI's own parsing: delays, event data, mention text, and the optional canary group."""

from __future__ import annotations

import importlib.util

import pytest
from puppet_cli.app import app
from puppet_cli.commands.events import parse_data, parse_delay
from puppet_cli.commands.posting import with_mention
from puppet_cli.rpc import Failure
from typer.testing import CliRunner


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("30s", 30_000), ("45", 45_000), ("1.5m", 90_000), ("2h", 7_200_000)],
)
def test_parse_delay(text: str, ms: int) -> None:
    assert parse_delay(text) == ms


@pytest.mark.parametrize("text", ["soon", "-5s", "3 weeks", ""])
def test_parse_delay_refuses(text: str) -> None:
    with pytest.raises(Failure):
        parse_delay(text)


def test_parse_data_keeps_json_types() -> None:
    data = parse_data(["headline=Tea prices soar", "valenceShift=0.3", "urgent=true", "n=[1,2]"])
    assert data == {
        "headline": "Tea prices soar",
        "valenceShift": 0.3,
        "urgent": True,
        "n": [1, 2],
    }
    assert parse_data(["equation=a=b"]) == {"equation": "a=b"}


def test_with_mention_adds_the_handle_once() -> None:
    assert with_mention("coby_x", "gm") == "@coby_x gm"
    assert with_mention("coby_x", "hey @Coby_X!") == "hey @Coby_X!"
    assert with_mention("coby", "hey @coby_x") == "@coby hey @coby_x"


def test_help_lists_every_command() -> None:
    done = CliRunner().invoke(app, ["--help"])
    assert done.exit_code == 0
    for command in (
        "status",
        "personas",
        "persona",
        "timeline",
        "post",
        "mention",
        "event",
        "force-post",
        "accounts",
    ):
        assert f" {command} " in done.stdout


@pytest.mark.skipif(
    importlib.util.find_spec("puppet_gateway.cli") is None,
    reason="puppet_gateway.cli (the gateway helper's typer app) is not in this checkout",
)
def test_canary_group_is_mounted_when_the_gateway_is_installed() -> None:
    done = CliRunner().invoke(app, ["canary", "--help"])
    assert done.exit_code == 0, done.output
    assert " canary " in CliRunner().invoke(app, ["--help"]).stdout


@pytest.mark.skipif(
    importlib.util.find_spec("puppet_gateway.cli") is not None,
    reason="puppet_gateway.cli is installed",
)
def test_no_canary_group_without_the_gateway_cli() -> None:
    done = CliRunner().invoke(app, ["canary", "--help"])
    assert done.exit_code == 2
    assert " canary " not in CliRunner().invoke(app, ["--help"]).stdout
