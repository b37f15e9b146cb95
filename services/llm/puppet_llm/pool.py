"""Which provider and model answer a persona, with providers opened once and reused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from puppet.llm.v1 import llm_pb2

from puppet_llm.failures import NotConfiguredError
from puppet_llm.providers import Provider
from puppet_llm.settings import LlmSettings, ProviderName

log = logging.getLogger(__name__)

Opener = Callable[[ProviderName, str], Provider]
"""Opens a provider for (name, model); raises NotConfiguredError when it cannot."""

NAMES: dict[llm_pb2.Provider.ValueType, ProviderName] = {
    llm_pb2.PROVIDER_OPENAI: "openai",
    llm_pb2.PROVIDER_GROK: "grok",
    llm_pb2.PROVIDER_LOCAL: "local",
    llm_pb2.PROVIDER_FAKE: "fake",
}
ENUMS: dict[str, llm_pb2.Provider.ValueType] = {name: value for value, name in NAMES.items()}


class Providers:
    """Resolves personas to (provider, model) and keeps one open provider per pair."""

    def __init__(self, settings: LlmSettings, opener: Opener, fixed: Provider | None = None):
        self._settings = settings
        self._opener = opener
        self._fixed = fixed
        self._open: dict[tuple[ProviderName, str], Provider] = {}
        self._lock = asyncio.Lock()

    def resolve(self, persona: llm_pb2.Persona) -> tuple[ProviderName, str]:
        """The provider name and the model id a call for persona goes to."""
        name = NAMES.get(persona.provider, self._settings.provider)
        if self._fixed is not None:
            return name, self._fixed.model
        if name in ("local", "fake"):  # one model each; once open, it names itself
            opened = self._open.get((name, ""))
            if opened is not None:
                return name, opened.model
            return name, self._settings.local_model if name == "local" else "fake"
        default = self._settings.openai_model if name == "openai" else self._settings.grok_model
        return name, persona.model or default

    def resolve_default(self) -> tuple[ProviderName, str]:
        """The provider and model of a persona that names neither."""
        return self.resolve(llm_pb2.Persona())

    async def get(self, name: ProviderName, model: str) -> Provider:
        """The open provider for (name, model), opening it on first use (off the event loop:
        the local model loads its weights when it opens)."""
        if name == "fake" and not self._settings.fake_allowed:
            raise NotConfiguredError(
                "fake", "PROVIDER_FAKE is for tests; set PUPPET_LLM_ALLOW_FAKE=true to enable it"
            )
        if self._fixed is not None:
            return self._fixed
        key = (name, "" if name in ("local", "fake") else model)
        async with self._lock:
            if key not in self._open:
                self._open[key] = await asyncio.to_thread(self._opener, name, model)
                log.info("opened provider %s with model %s", name, self._open[key].model)
        return self._open[key]

    async def close(self) -> None:
        providers = [*self._open.values(), *([self._fixed] if self._fixed else [])]
        self._open.clear()
        for provider in providers:
            await provider.close()
