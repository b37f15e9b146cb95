"""Helpers beside the tests: social settings for tests, a dead address, the CLI in a thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

from puppet_agent import testing
from puppet_cli.app import app
from puppet_runtime.testing import free_port
from puppet_social.settings import SocialSettings
from typer.testing import CliRunner, Result


def social_settings(data_dir: Path) -> SocialSettings:
    """Social as the agent-suite kit runs it: quiet, unlimited, polling at once."""
    return SocialSettings(**testing.QUIET, data_dir=data_dir, **testing.FAST_SOCIAL)


def nowhere() -> str:
    """An address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


async def invoke_cli(addresses: dict[str, str], *args: str) -> Result:
    """Run `puppet <args>` in a worker thread (the CLI runs its own event loop)."""
    options = [f"--{service}-addr={address}" for service, address in addresses.items()]
    runner = CliRunner()
    argv = [*options, "--timeout=5", *args]
    result: Result = await asyncio.to_thread(lambda: runner.invoke(app, argv))
    return result
