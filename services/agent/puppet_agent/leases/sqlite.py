"""SQLite lease store: one row per key, each operation one ``BEGIN IMMEDIATE`` transaction.

"Store time" is this host's clock: replicas sharing a SQLite file share a host (and its clock).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from puppet_runtime.sqlite import ThreadedConnection, transaction

from puppet_agent.leases import Lease

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    replica_id TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at REAL NOT NULL
)
"""


class SqliteLeaseStore:
    """Leases in table ``leases`` of a SQLite file."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._db = ThreadedConnection("sqlite-leases")

    async def open(self) -> None:
        await self._db.open(self._path, "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000")
        await self._db.run(lambda db: db.execute(_SCHEMA))

    async def close(self) -> None:
        await self._db.close()

    async def try_acquire(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        return await self._db.run(transaction, _acquire, key, replica_id, ttl_s, self._clock())

    async def renew(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        return await self._db.run(transaction, _renew, key, replica_id, ttl_s, self._clock())

    async def renew_many(
        self, keys: Sequence[str], replica_id: str, ttl_s: float
    ) -> dict[str, Lease | None]:
        return await self._db.run(
            transaction, _renew_many, list(keys), replica_id, ttl_s, self._clock()
        )

    async def release(self, key: str, replica_id: str) -> bool:
        return await self._db.run(transaction, _release, key, replica_id, self._clock())

    async def holders(self) -> dict[str, Lease]:
        rows = await self._db.run(_live, self._clock())
        return {row.key: row for row in rows}


def _row(db: sqlite3.Connection, key: str) -> Lease | None:
    found = db.execute(
        "SELECT key, replica_id, token, expires_at FROM leases WHERE key = ?", (key,)
    ).fetchone()
    return None if found is None else Lease(*found)


def _write(db: sqlite3.Connection, lease: Lease) -> Lease:
    db.execute(
        "INSERT INTO leases (key, replica_id, token, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET replica_id = excluded.replica_id,"
        " token = excluded.token, expires_at = excluded.expires_at",
        (lease.key, lease.replica_id, lease.token, lease.expires_at),
    )
    return lease


def _acquire(
    db: sqlite3.Connection, key: str, replica_id: str, ttl_s: float, now: float
) -> Lease | None:
    row = _row(db, key)
    if row is not None and row.expires_at > now:
        if row.replica_id != replica_id:
            return None
        return _write(db, Lease(key, replica_id, row.token, now + ttl_s))
    token = 1 if row is None else row.token + 1
    return _write(db, Lease(key, replica_id, token, now + ttl_s))


def _renew(
    db: sqlite3.Connection, key: str, replica_id: str, ttl_s: float, now: float
) -> Lease | None:
    row = _row(db, key)
    if row is None or row.replica_id != replica_id or row.expires_at <= now:
        return None
    return _write(db, Lease(key, replica_id, row.token, now + ttl_s))


def _renew_many(
    db: sqlite3.Connection, keys: list[str], replica_id: str, ttl_s: float, now: float
) -> dict[str, Lease | None]:
    return {key: _renew(db, key, replica_id, ttl_s, now) for key in keys}


def _release(db: sqlite3.Connection, key: str, replica_id: str, now: float) -> bool:
    row = _row(db, key)
    if row is None or row.replica_id != replica_id or row.expires_at <= now:
        return False
    _write(db, Lease(key, "", row.token, 0.0))
    return True


def _live(db: sqlite3.Connection, now: float) -> list[Lease]:
    rows = db.execute(
        "SELECT key, replica_id, token, expires_at FROM leases WHERE expires_at > ?", (now,)
    ).fetchall()
    return [Lease(*row) for row in rows]
