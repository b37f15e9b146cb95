"""SQLite adapter (the embedded default): WAL, one thread per connection, float32 BLOBs."""

from puppet_memory.store.sqlite.adapter import SqliteStore

__all__ = ["SqliteStore"]
