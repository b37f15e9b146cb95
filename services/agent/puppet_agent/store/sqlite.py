"""SQLite adapter of the agent store: stdlib sqlite3 on one dedicated thread, one hop per call."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from puppet_runtime.sqlite import ThreadedConnection, transaction

from puppet_agent.store import EventRecord, PersonaRecord, PostRecord, RequestRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS personas (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    version INTEGER NOT NULL,
    paused INTEGER NOT NULL,
    pause_time REAL,
    create_time REAL NOT NULL,
    update_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    targets TEXT NOT NULL,
    priority TEXT NOT NULL,
    create_time REAL NOT NULL,
    execute_after REAL,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS events_processed ON events (processed_at, seq);
CREATE TABLE IF NOT EXISTS posts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    target_post TEXT NOT NULL,
    social_post TEXT NOT NULL,
    outbox_item TEXT NOT NULL,
    delivery TEXT NOT NULL,
    scheduled_time REAL,
    create_time REAL NOT NULL,
    trigger TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_agent ON posts (agent, seq);
CREATE TABLE IF NOT EXISTS requests (
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (scope, request_id)
) WITHOUT ROWID;
"""

_PERSONA = "id, config, seq, version, paused, pause_time, create_time, update_time"
_EVENT = "id, type, data, targets, priority, create_time, execute_after, processed_at, seq"
_POST = (
    "id, agent, kind, text, target_post, social_post, outbox_item, delivery, scheduled_time, "
    "create_time, trigger, seq"
)


def _persona(row: tuple[Any, ...]) -> PersonaRecord:
    pid, config, seq, version, paused, pause_time, created, updated = row
    return PersonaRecord(
        pid, json.loads(config), seq, version, bool(paused), pause_time, created, updated
    )


def _event(row: tuple[Any, ...]) -> EventRecord:
    eid, kind, data, targets, priority, created, after, processed, seq = row
    return EventRecord(
        eid,
        kind,
        json.loads(data),
        tuple(json.loads(targets)),
        priority,
        created,
        after,
        processed,
        seq,
    )


def _post(row: tuple[Any, ...]) -> PostRecord:
    return PostRecord(*row)


def _get_persona(db: sqlite3.Connection, persona_id: str) -> PersonaRecord | None:
    row = db.execute(f"SELECT {_PERSONA} FROM personas WHERE id = ?", (persona_id,)).fetchone()
    return _persona(row) if row else None


def _upsert(
    db: sqlite3.Connection, persona_id: str, config: dict[str, Any], now: float
) -> PersonaRecord:
    text = json.dumps(config)
    if _get_persona(db, persona_id) is None:
        db.execute(
            "INSERT INTO personas (id, config, version, paused, pause_time, create_time,"
            " update_time) VALUES (?, ?, 1, 0, NULL, ?, ?)",
            (persona_id, text, now, now),
        )
    else:
        db.execute(
            "UPDATE personas SET config = ?, version = version + 1, update_time = ? WHERE id = ?",
            (text, now, persona_id),
        )
    found = _get_persona(db, persona_id)
    assert found is not None
    return found


def _set_paused(
    db: sqlite3.Connection, persona_id: str, paused: bool, now: float
) -> PersonaRecord | None:
    current = _get_persona(db, persona_id)
    if current is None or current.paused == paused:
        return current
    db.execute(
        "UPDATE personas SET paused = ?, pause_time = ?, update_time = ? WHERE id = ?",
        (int(paused), now if paused else None, now, persona_id),
    )
    return _get_persona(db, persona_id)


def _remember(db: sqlite3.Connection, record: RequestRecord) -> RequestRecord:
    db.execute(
        "INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?)",
        (record.scope, record.request_id, record.fingerprint, record.payload),
    )
    row = db.execute(
        "SELECT scope, request_id, fingerprint, payload FROM requests"
        " WHERE scope = ? AND request_id = ?",
        (record.scope, record.request_id),
    ).fetchone()
    return RequestRecord(*row)


class SqliteStore:
    """The embedded default: one SQLite file in the data directory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn = ThreadedConnection("agent-sqlite")

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        await self._conn.open(self._path, "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000")
        await self._conn.run(lambda db: db.executescript(SCHEMA))

    async def close(self) -> None:
        await self._conn.close()

    async def upsert_persona(
        self, persona_id: str, config: dict[str, Any], now: float
    ) -> PersonaRecord:
        return await self._conn.run(transaction, _upsert, persona_id, config, now)

    async def get_persona(self, persona_id: str) -> PersonaRecord | None:
        return await self._conn.run(_get_persona, persona_id)

    async def list_personas(
        self, *, after_seq: int = 0, limit: int = 1_000, paused: bool | None = None
    ) -> list[PersonaRecord]:
        where, args = "seq > ?", [after_seq]
        if paused is not None:
            where += " AND paused = ?"
            args.append(int(paused))
        rows = await self._conn.run(
            lambda db: db.execute(
                f"SELECT {_PERSONA} FROM personas WHERE {where} ORDER BY seq LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [_persona(r) for r in rows]

    async def count_personas(self) -> int:
        row = await self._conn.run(
            lambda db: db.execute("SELECT COUNT(*) FROM personas").fetchone()
        )
        return int(row[0])

    async def delete_persona(self, persona_id: str) -> bool:
        count = await self._conn.run(
            lambda db: db.execute("DELETE FROM personas WHERE id = ?", (persona_id,)).rowcount
        )
        return bool(count)

    async def set_paused(self, persona_id: str, paused: bool, now: float) -> PersonaRecord | None:
        return await self._conn.run(transaction, _set_paused, persona_id, paused, now)

    async def add_event(self, event: EventRecord) -> EventRecord:
        def insert(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO events (id, type, data, targets, priority, create_time,"
                " execute_after, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    event.type,
                    json.dumps(event.data),
                    json.dumps(list(event.targets)),
                    event.priority,
                    event.create_time,
                    event.execute_after,
                    event.processed_at,
                ),
            )
            return int(cursor.lastrowid or 0)

        seq = await self._conn.run(insert)
        return EventRecord(**{**event.__dict__, "seq": seq})

    async def mark_processed(self, event_id: str, at: float) -> None:
        await self._conn.run(
            lambda db: db.execute("UPDATE events SET processed_at = ? WHERE id = ?", (at, event_id))
        )

    async def pending_events(self) -> list[EventRecord]:
        rows = await self._conn.run(
            lambda db: db.execute(
                f"SELECT {_EVENT} FROM events WHERE processed_at IS NULL ORDER BY seq"
            ).fetchall()
        )
        return [_event(r) for r in rows]

    async def list_processed(self, *, before_seq: int | None, limit: int) -> list[EventRecord]:
        bound = before_seq if before_seq is not None else 2**62
        rows = await self._conn.run(
            lambda db: db.execute(
                f"SELECT {_EVENT} FROM events WHERE processed_at IS NOT NULL AND seq < ?"
                " ORDER BY seq DESC LIMIT ?",
                (bound, limit),
            ).fetchall()
        )
        return [_event(r) for r in rows]

    async def add_post(self, post: PostRecord) -> PostRecord:
        def insert(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO posts (id, agent, kind, text, target_post, social_post, outbox_item,"
                " delivery, scheduled_time, create_time, trigger)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    post.id,
                    post.agent,
                    post.kind,
                    post.text,
                    post.target_post,
                    post.social_post,
                    post.outbox_item,
                    post.delivery,
                    post.scheduled_time,
                    post.create_time,
                    post.trigger,
                ),
            )
            return int(cursor.lastrowid or 0)

        seq = await self._conn.run(insert)
        return PostRecord(**{**post.__dict__, "seq": seq})

    async def update_post(
        self, post_id: str, *, delivery: str, social_post: str, scheduled_time: float | None
    ) -> None:
        await self._conn.run(
            lambda db: db.execute(
                "UPDATE posts SET delivery = ?, social_post = ?, scheduled_time = ? WHERE id = ?",
                (delivery, social_post, scheduled_time, post_id),
            )
        )

    async def list_posts(
        self, agent: str, *, delivery: str | None, before_seq: int | None, limit: int
    ) -> list[PostRecord]:
        where, args = "agent = ? AND seq < ?", [agent, before_seq or 2**62]
        if delivery is not None:
            where += " AND delivery = ?"
            args.append(delivery)
        rows = await self._conn.run(
            lambda db: db.execute(
                f"SELECT {_POST} FROM posts WHERE {where} ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        )
        return [_post(r) for r in rows]

    async def recall_request(self, scope: str, request_id: str) -> RequestRecord | None:
        row = await self._conn.run(
            lambda db: db.execute(
                "SELECT scope, request_id, fingerprint, payload FROM requests"
                " WHERE scope = ? AND request_id = ?",
                (scope, request_id),
            ).fetchone()
        )
        return RequestRecord(*row) if row else None

    async def remember_request(self, record: RequestRecord) -> RequestRecord:
        return await self._conn.run(transaction, _remember, record)
