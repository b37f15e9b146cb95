"""The composition root opens the real provider adapters from settings alone."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from puppet.llm.v1 import llm_pb2 as m
from puppet.llm.v1 import llm_service_pb2 as pb
from puppet_runtime.testing import status_of


async def test_the_fake_adapter_answers_when_it_is_the_default(serve: Any) -> None:
    pytest.importorskip("puppet_llm.providers.fake")
    async with serve(provider=None, default_provider="fake") as llm:
        persona = m.Persona(agent="agents/ada", display_name="Ada")
        got = await llm.ComposePost(pb.ComposePostRequest(persona=persona))
        reaction = await llm.DecideReaction(
            pb.DecideReactionRequest(
                persona=persona,
                target=m.TargetPost(post="accounts/x/posts/1", text="hi", author_handle="bob"),
            )
        )
    assert got.composition.text
    assert got.composition.usage.provider == m.PROVIDER_FAKE
    assert got.composition.prompt.model == got.composition.usage.model
    assert reaction.decision.fallback is False


async def test_hosted_providers_without_keys_are_not_configured(serve: Any) -> None:
    async with serve(provider=None) as llm:
        for provider in (m.PROVIDER_OPENAI, m.PROVIDER_GROK):
            persona = m.Persona(agent="agents/ada", provider=provider)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await llm.ComposePost(pb.ComposePostRequest(persona=persona))
            code, info, _ = status_of(caught.value)
            assert code is grpc.StatusCode.FAILED_PRECONDITION
            assert info is not None
            assert info.reason == "PROVIDER_NOT_CONFIGURED"
            assert "API_KEY" in (caught.value.details() or "")
