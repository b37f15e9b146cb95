"""MongoDB adapter (production): AsyncMongoClient; multi-document writes in transactions."""

from puppet_memory.store.mongo.adapter import MongoStore

__all__ = ["MongoStore"]
