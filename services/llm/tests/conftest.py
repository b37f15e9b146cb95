"""Fixtures: a scripted provider, SQLite and MongoDB stores, and a real LlmService on port 0."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from puppet.llm.v1 import llm_pb2
from puppet.llm.v1 import llm_service_pb2_grpc as rpc
from puppet_llm.providers import (
    ChatMessage,
    Generation,
    GenerationParams,
    ProviderUnavailable,
)
from puppet_llm.server import build
from puppet_llm.settings import LlmSettings
from puppet_llm.store import LlmStore
from puppet_llm.store.mongo import MongoStore
from puppet_llm.store.sqlite import SqliteStore
from puppet_runtime.testing import mongo_wire_server, running

if TYPE_CHECKING:
    from puppet.llm.v1.llm_service_pb2_grpc import LlmServiceAsyncStub

DATA = Path(__file__).parent / "data"
REACTION_JSON = json.dumps(
    {
        "action": "like",
        "reaction": "amused",
        "reasoning": "it is funny",
        "confidence": 0.8,
        "sentiment_shift": 0.1,
    }
)


def default_text(n: int) -> str:
    """A distinct post without figures for call n (no two are near-duplicates)."""
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters += chr(ord("a") + digit)
        if not n:
            break
    return f"{letters} says hello to {letters}z"


@dataclass(frozen=True)
class Call:
    """One generate() call as the provider received it."""

    messages: list[ChatMessage]
    params: GenerationParams
    timeout_s: float


class ScriptedProvider:
    """A first-class fake of the provider port: answers from a script, records every call.

    Script items are texts to return, (text, finish_reason) pairs, or exceptions to raise, in
    order; when the script runs out it answers a distinct default post (or a valid reaction
    object when a schema is asked for). A text alone finishes with "stop".
    """

    def __init__(
        self,
        script: Sequence[str | tuple[str, str] | Exception] = (),
        *,
        name: str = "fake",
        model: str = "scripted-1",
        delay_s: float = 0.0,
        tokens: tuple[int, int] | None = None,
    ) -> None:
        self.script = list(script)
        self.calls: list[Call] = []
        self.closed = False
        self._name, self._model, self._delay_s, self._tokens = name, model, delay_s, tokens

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    async def generate(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, timeout_s: float
    ) -> Generation:
        self.calls.append(Call(list(messages), params, timeout_s))
        if self._delay_s:
            await asyncio.sleep(min(self._delay_s, timeout_s))
            if self._delay_s > timeout_s:
                raise ProviderUnavailable("timed out")
        item = self.script.pop(0) if self.script else None
        if isinstance(item, Exception):
            raise item
        if item is None:
            item = REACTION_JSON if params.json_schema else default_text(len(self.calls))
        text, finish = item if isinstance(item, tuple) else (item, "stop")
        prompt, completion = self._tokens or (
            sum(len(m.content.split()) for m in messages),
            len(text.split()),
        )
        return Generation(text, self._model, prompt, completion, finish, 0.25)

    async def close(self) -> None:
        self.closed = True


def legacy_persona(path: Path, **overrides: Any) -> llm_pb2.Persona:
    """What the orchestrator sends for a legacy persona file (field mapping of CONTRACT §3)."""
    cfg = json.loads(path.read_text())
    personality, style = cfg.get("personality", {}), cfg.get("style_guide", {})
    providers = {"openai": llm_pb2.PROVIDER_OPENAI, "grok": llm_pb2.PROVIDER_GROK}
    unspecified = llm_pb2.PROVIDER_UNSPECIFIED
    persona = llm_pb2.Persona(
        agent=f"agents/{cfg['id']}",
        display_name=cfg.get("name", ""),
        description=cfg.get("description", ""),
        provider=providers.get(cfg.get("llm_provider", ""), unspecified),
        custom_system_prompt=cfg.get("custom_system_prompt", ""),
        rotating_system_prompts=cfg.get("rotating_system_prompts", []),
        traits=personality.get("traits", []),
        values=personality.get("values", []),
        speaking_style=personality.get("speaking_style", ""),
        interests=personality.get("interests", []),
        voice=style.get("voice", ""),
        tone=style.get("tone", ""),
        formatting_rules=[f"{k}: {v}" for k, v in style.get("formatting", {}).items()],
        topics_to_avoid=style.get("topics_to_avoid", []),
    )
    for key, value in overrides.items():
        field = getattr(persona, key)
        if hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(persona, key, value)
    return persona


COBY_RULES = llm_pb2.OutputRules(
    lowercase=True,
    strip_hashtags=True,
    banned_phrases=["chaos soup", "that's the tweet", "ted talk", "head empty"],
    regenerate_prefixes=["fine shyt"],
    regenerate_probability=0.8,
    max_regenerations=3,
    max_tokens=50,
    prompt_as_user_message=True,
)


@pytest.fixture
def coby() -> llm_pb2.Persona:
    """The shipped Coby file with the output rules that replace legacy's special cases."""
    return legacy_persona(DATA / "coby-agent.json", output_rules=COBY_RULES)


@pytest.fixture
def plain() -> llm_pb2.Persona:
    """A persona without custom prompts (the generated prompt applies)."""
    return llm_pb2.Persona(
        agent="agents/ada",
        display_name="Ada",
        description="a deadpan tea critic",
        provider=llm_pb2.PROVIDER_OPENAI,
        traits=["dry", "curious"],
        speaking_style="short and plain",
        tone="deadpan",
    )


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture(scope="session")
def scripted() -> type[ScriptedProvider]:
    """The ScriptedProvider class, for tests that need more than one."""
    return ScriptedProvider


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An nx-27017 MongoDB wire-protocol server for the whole session."""
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


StoreFactory = Callable[[], LlmStore]


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one fresh database (SQLite file or MongoDB database) per test."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "llm.sqlite3")
    uri = request.getfixturevalue("mongo_uri")
    database = f"t_{uuid.uuid4().hex[:12]}"
    return lambda: MongoStore(uri, database)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[LlmStore]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()


def make_settings(data_dir: Path, **overrides: Any) -> LlmSettings:
    values: dict[str, Any] = {
        "port": 0,
        "data_dir": data_dir,
        "drain_s": 0,
        "shutdown_grace_s": 0,
        "log_format": "text",
        "random_seed": 7,
        "default_provider": "local",
        **overrides,
    }
    return LlmSettings(**values)


Serve = Callable[..., "AbstractAsyncContextManager[LlmServiceAsyncStub]"]


@pytest.fixture
def serve(tmp_path: Path, provider: ScriptedProvider) -> Serve:
    """serve(provider=..., store=None, **settings) starts an LlmService and yields a stub."""

    @asynccontextmanager
    async def start(
        provider: Any = provider, store: LlmStore | None = None, **overrides: Any
    ) -> AsyncIterator[LlmServiceAsyncStub]:
        settings = make_settings(tmp_path / "data", **overrides)
        spec = build(settings, provider=provider, store=store)
        async with running(spec, settings) as (_, channel):
            yield rpc.LlmServiceStub(channel)

    return start


@pytest.fixture
async def llm(serve: Serve) -> AsyncIterator[LlmServiceAsyncStub]:
    """An LlmService over SQLite answering every persona with the scripted provider."""
    async with serve() as stub:
        yield stub
