"""Wire MemoryService: choose the store and the embedder, hand everything to puppet_runtime."""

from __future__ import annotations

from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import memory_service_pb2_grpc as rpc
from puppet_runtime import ServiceSpec, run

from puppet_memory.domain import MemoryDomain
from puppet_memory.embedding import Embedder
from puppet_memory.servicer import MemoryServicer
from puppet_memory.settings import MemorySettings
from puppet_memory.store import MemoryStore


def open_store(settings: MemorySettings) -> MemoryStore:
    if settings.store == "mongo":
        from puppet_memory.store.mongo import MongoStore

        assert settings.mongo_uri is not None  # enforced by MemorySettings
        return MongoStore(settings.mongo_uri.get_secret_value(), settings.mongo_database)
    from puppet_memory.store.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "memory.sqlite3")


def open_embedder(settings: MemorySettings) -> Embedder:
    """Imported lazily: each embedder pulls in its own heavy dependencies."""
    if settings.embedder == "openai":
        from puppet_memory.embedding.openai import OpenAIEmbedder

        assert settings.openai_api_key is not None  # enforced by MemorySettings
        return OpenAIEmbedder(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            model=settings.openai_embedding_model,
        )
    from puppet_memory.embedding.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def build(
    settings: MemorySettings, store: MemoryStore | None = None, embedder: Embedder | None = None
) -> ServiceSpec:
    store = store or open_store(settings)
    embedder = embedder or open_embedder(settings)
    domain = MemoryDomain(
        store,
        embedder,
        default_budget=settings.default_memory_budget,
        cache_vectors=settings.index_cache_vectors,
    )
    return ServiceSpec(
        domain="memory.puppet",
        services=[pb.DESCRIPTOR.services_by_name["MemoryService"]],
        register=lambda server: rpc.add_MemoryServiceServicer_to_server(
            MemoryServicer(domain), server
        ),
        on_startup=[store.open],
        on_shutdown=[store.close, embedder.close, domain.close],
    )


def main() -> None:
    settings = MemorySettings()  # the only place env is read
    run(build(settings), settings)
