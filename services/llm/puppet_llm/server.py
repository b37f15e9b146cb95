"""Wire LlmService: choose the store and the providers, hand everything to puppet_runtime."""

from __future__ import annotations

import importlib
import logging
import random
from typing import Any

from puppet.llm.v1 import llm_service_pb2 as pb
from puppet.llm.v1 import llm_service_pb2_grpc as rpc
from puppet_runtime import ServiceSpec, run

from puppet_llm.domain import LlmDomain
from puppet_llm.failures import NotConfiguredError
from puppet_llm.pool import Opener, Providers
from puppet_llm.providers import ChatMessage, GenerationParams, Provider, ProviderError
from puppet_llm.servicer import LlmServicer
from puppet_llm.settings import LlmSettings, ProviderName
from puppet_llm.store import LlmStore

log = logging.getLogger(__name__)

KEY_ADVICE = (
    "configure a hosted model instead: PUPPET_LLM_PROVIDER=openai with PUPPET_LLM_OPENAI_API_KEY, "
    "or PUPPET_LLM_PROVIDER=grok with PUPPET_LLM_GROK_API_KEY"
)


def open_store(settings: LlmSettings) -> LlmStore:
    if settings.store == "mongo":
        from puppet_llm.store.mongo import MongoStore

        assert settings.mongo_uri is not None  # enforced by LlmSettings
        return MongoStore(settings.mongo_uri.get_secret_value(), settings.mongo_database)
    from puppet_llm.store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "llm.sqlite3")


def _adapter(provider: ProviderName, module: str, attribute: str) -> Any:
    """Imported lazily: each provider pulls in its own heavy dependencies."""
    try:
        return getattr(importlib.import_module(f"puppet_llm.providers.{module}"), attribute)
    except (ImportError, AttributeError) as err:
        raise NotConfiguredError(provider, f"its adapter cannot be loaded ({err})") from None


def opener(settings: LlmSettings) -> Opener:
    """Opens the provider adapters the settings configure."""

    def open_provider(name: ProviderName, model: str) -> Provider:
        try:
            return open_adapter(name, model)
        except ValueError as err:  # the adapters refuse an empty key or model this way
            raise NotConfiguredError(name, str(err)) from None

    def open_adapter(name: ProviderName, model: str) -> Provider:
        if name == "openai":
            if settings.openai_api_key is None:
                raise NotConfiguredError("openai", "PUPPET_LLM_OPENAI_API_KEY is not set")
            provider: Provider = _adapter("openai", "openai", "OpenAIProvider")(
                api_key=settings.openai_api_key.get_secret_value(),
                base_url=settings.openai_base_url,
                model=model,
            )
            return provider
        if name == "grok":
            if settings.grok_api_key is None:
                raise NotConfiguredError("grok", "PUPPET_LLM_GROK_API_KEY is not set")
            provider = _adapter("grok", "openai", "grok_provider")(
                settings.grok_api_key.get_secret_value(),
                base_url=settings.grok_base_url,
                model=model,
            )
            return provider
        if name == "fake":
            provider = _adapter("fake", "fake", "FakeProvider")()
            return provider
        try:
            provider = _adapter("local", "local", "LocalProvider")(
                n_threads=settings.local_threads or None, n_ctx=settings.local_context_tokens
            )
        except (NotConfiguredError, ProviderError) as err:
            raise NotConfiguredError(
                "local", f"the local model is not installed ({err}); {KEY_ADVICE}"
            ) from None
        return provider

    return open_provider


def build(
    settings: LlmSettings, provider: Provider | None = None, store: LlmStore | None = None
) -> ServiceSpec:
    """The service; provider, when given, answers every persona (tests, benchmarks)."""
    store = store or open_store(settings)
    providers = Providers(settings, opener(settings), fixed=provider)
    domain = LlmDomain(store, providers, settings, random.Random(settings.random_seed))

    async def warm_default() -> None:
        """Open the default provider before serving; the local model also loads its weights."""
        if provider is not None:
            return
        name, model = providers.resolve_default()
        try:
            opened = await providers.get(name, model)
            if name == "local":
                hello = [ChatMessage("user", "hi")]
                await opened.generate(hello, GenerationParams(max_tokens=1), timeout_s=300)
        except NotConfiguredError as err:
            log.error("default provider %s is not usable: %s", name, err.why)
        except ProviderError as err:
            log.error("default provider %s failed to warm up: %s; %s", name, err, KEY_ADVICE)

    return ServiceSpec(
        domain="llm.puppet",
        services=[pb.DESCRIPTOR.services_by_name["LlmService"]],
        register=lambda server: rpc.add_LlmServiceServicer_to_server(LlmServicer(domain), server),
        on_startup=[store.open, warm_default],
        on_shutdown=[store.close, providers.close],
    )


def main() -> None:
    settings = LlmSettings()  # the only place env is read
    run(build(settings), settings)
