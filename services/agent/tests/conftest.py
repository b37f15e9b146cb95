"""Fixtures: real memory, llm (provider fake) and social (sandbox) servers, and the agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from puppet_agent.testing import Suite, running_suite
from puppet_llm.providers.fake import FakeProvider


@pytest.fixture
async def suite_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """`await suite_factory(llm_script=(), **agent_settings)`: the suite, the agent ticking fast."""
    async with AsyncExitStack() as stack:

        async def start(llm_script: Sequence[str] = (), **overrides: Any) -> Suite:
            started: Suite = await stack.enter_async_context(
                running_suite(
                    tmp_path,
                    provider=FakeProvider(script=llm_script),
                    **{"tick_s": 0.05, **overrides},
                )
            )
            return started

        yield start


@pytest.fixture
async def suite(suite_factory: Any) -> Suite:
    started: Suite = await suite_factory()
    return started
