"""SQLite adapter of the outbox store: stdlib sqlite3 on one dedicated thread, one hop per call."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import astuple
from datetime import datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

from puppet_runtime.groups import SqliteWrites
from puppet_runtime.sqlite import ThreadedConnection

from puppet_social.network import PostRecord
from puppet_social.store import (
    NO_CHANGE,
    Action,
    Change,
    Mention,
    NewItem,
    OutboxItem,
    RateWindow,
    State,
    check_transition,
    created_item,
    mention_key,
)

ROW_CACHE = 4096
"""Outbox rows kept in memory after this process wrote or read them."""


P = ParamSpec("P")
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    text TEXT NOT NULL,
    target_post_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    network_post_id TEXT NOT NULL,
    error_reason TEXT NOT NULL,
    claimed_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    agent TEXT NOT NULL DEFAULT '',
    UNIQUE (account, request_id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_account ON outbox (account, state, id);
CREATE TABLE IF NOT EXISTS rate_windows (
    account TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    "limit" INTEGER,
    remaining INTEGER,
    reset_at REAL,
    day_limit INTEGER,
    day_remaining INTEGER,
    day_reset_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (account, endpoint)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mentions (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    post_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_handle TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    in_reply_to_id TEXT,
    quote_of_id TEXT,
    mentioned_handles TEXT NOT NULL,
    received_at REAL NOT NULL,
    depth INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_key ON mentions (key, account);
CREATE TABLE IF NOT EXISTS mention_cursors (
    account TEXT PRIMARY KEY,
    since_id TEXT,
    seen_floor TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
"""
MENTION_COLUMNS = (
    "account, post_id, author_id, author_handle, text, created_at, conversation_id,"
    " in_reply_to_id, quote_of_id, mentioned_handles, received_at, depth"
)
COLUMNS = (
    "id, account, request_id, action, text, target_post_id, state, attempts, next_attempt_at,"
    " network_post_id, error_reason, claimed_at, created_at, updated_at, agent"
)


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added after the first release, for files created before them."""
    have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "agent" not in have:
        db.execute("ALTER TABLE outbox ADD COLUMN agent TEXT NOT NULL DEFAULT ''")
    have = {row[1] for row in db.execute("PRAGMA table_info(mentions)")}
    if "depth" not in have:
        db.execute("ALTER TABLE mentions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0")


def _item(row: tuple[object, ...]) -> OutboxItem:
    values = list(row)
    values[3] = Action(str(values[3]))
    values[6] = State(str(values[6]))
    return OutboxItem(*values)  # type: ignore[arg-type]


def _select(db: sqlite3.Connection, item_id: str) -> OutboxItem | None:
    row = db.execute(f"SELECT {COLUMNS} FROM outbox WHERE id = ?", (item_id,)).fetchone()
    return None if row is None else _item(row)


def _create(db: sqlite3.Connection, new: NewItem, now: float) -> tuple[OutboxItem, bool]:
    item = created_item(new, now)
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    cursor = db.execute(
        f"INSERT INTO outbox ({COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING", astuple(item)
    )
    if cursor.rowcount == 1:
        return item, True
    row = db.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE account = ? AND request_id = ?",
        (new.account, new.request_id),
    ).fetchone()
    return _item(row), False


def _transition(
    db: sqlite3.Connection, item_id: str, expected: State, to: State, now: float, change: Change
) -> OutboxItem | None:
    sets = ["state = ?", "updated_at = ?"]
    args: list[object] = [str(to), now]
    for name in ("next_attempt_at", "network_post_id", "error_reason", "claimed_at"):
        value = getattr(change, name)
        if value is not None:
            sets.append(f"{name} = ?")
            args.append(value)
    if change.add_attempt:
        sets.append("attempts = attempts + 1")
    # Runs in a transaction (SqliteWrites), so the update and the re-read are one step.
    cursor = db.execute(
        f"UPDATE outbox SET {', '.join(sets)} WHERE id = ? AND state = ?",
        (*args, item_id, str(expected)),
    )
    return _select(db, item_id) if cursor.rowcount == 1 else None


def _due(db: sqlite3.Connection, now: float, limit: int) -> list[OutboxItem]:
    rows = db.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE state IN (?, ?) AND next_attempt_at <= ?"
        " ORDER BY next_attempt_at, id LIMIT ?",
        (str(State.QUEUED), str(State.APPROVED), now, limit),
    ).fetchall()
    return [_item(row) for row in rows]


def _list(
    db: sqlite3.Connection,
    account: str | None,
    states: Collection[State],
    after_id: str,
    limit: int,
    agent: str | None = None,
) -> list[OutboxItem]:
    where, args = ["id > ?"], [after_id]
    if account is not None:
        where.append("account = ?")
        args.append(account)
    if agent is not None:
        where.append("agent = ?")
        args.append(agent)
    if states:
        where.append(f"state IN ({', '.join('?' * len(states))})")
        args.extend(str(s) for s in states)
    rows = db.execute(
        f"SELECT {COLUMNS} FROM outbox WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
        (*args, max(limit, 0)),
    ).fetchall()
    return [_item(row) for row in rows]


def _count_sent(
    db: sqlite3.Connection, account: str, actions: Collection[Action], since: float
) -> int:
    if not actions:
        return 0
    marks = ", ".join("?" * len(actions))
    (count,) = db.execute(
        f"SELECT COUNT(*) FROM outbox WHERE account = ? AND state = ? AND updated_at >= ?"
        f" AND action IN ({marks})",
        (account, str(State.SENT), since, *(str(a) for a in actions)),
    ).fetchone()
    return int(count)


def _get_window(db: sqlite3.Connection, account: str, endpoint: str) -> RateWindow | None:
    row = db.execute(
        "SELECT * FROM rate_windows WHERE account = ? AND endpoint = ?", (account, endpoint)
    ).fetchone()
    return None if row is None else RateWindow(*row)


def _put_window(db: sqlite3.Connection, window: RateWindow) -> None:
    marks = ", ".join("?" * 9)
    db.execute(f"INSERT OR REPLACE INTO rate_windows VALUES ({marks})", astuple(window))


def _mention(row: tuple[object, ...]) -> Mention:
    account, pid, author, handle, text, created, conv, reply, quote, handles, received, depth = row
    post = PostRecord(
        id=str(pid),
        author_id=str(author),
        author_handle=str(handle),
        text=str(text),
        created_at=datetime.fromisoformat(str(created)),
        conversation_id=str(conv),
        in_reply_to_id=None if reply is None else str(reply),
        quote_of_id=None if quote is None else str(quote),
        mentioned_handles=tuple(str(handles).split()),
    )
    assert isinstance(received, float)
    assert isinstance(depth, int)
    return Mention(str(account), post, received, depth)


def _add_mentions(
    db: sqlite3.Connection,
    account: str,
    posts: Sequence[PostRecord],
    now: float,
    keep: int,
    depths: Mapping[str, int],
) -> list[Mention]:
    added: list[Mention] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(
            "SELECT seen_floor FROM mention_cursors WHERE account = ?", (account,)
        ).fetchone()
        floor = "" if row is None else str(row[0])
        for post in posts:
            key = mention_key(post.id)
            if key <= floor:
                continue
            cursor = db.execute(
                "INSERT INTO mentions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    account,
                    key,
                    post.id,
                    post.author_id,
                    post.author_handle,
                    post.text,
                    post.created_at.isoformat(),
                    post.conversation_id,
                    post.in_reply_to_id,
                    post.quote_of_id,
                    " ".join(post.mentioned_handles),
                    now,
                    depths.get(post.id, 0),
                ),
            )
            if cursor.rowcount == 1:
                added.append(Mention(account, post, now, depths.get(post.id, 0)))
        dropped = db.execute(
            "SELECT key FROM mentions WHERE account = ? ORDER BY key DESC LIMIT 1 OFFSET ?",
            (account, max(keep, 0)),
        ).fetchone()
        if dropped is not None:
            db.execute("DELETE FROM mentions WHERE account = ? AND key <= ?", (account, dropped[0]))
            db.execute(
                "INSERT INTO mention_cursors (account, seen_floor) VALUES (?, ?)"
                " ON CONFLICT (account) DO UPDATE SET seen_floor = excluded.seen_floor",
                (account, max(floor, str(dropped[0]))),
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return added


def _list_mentions(
    db: sqlite3.Connection,
    account: str | None,
    after_id: str,
    before_id: str,
    limit: int,
    newest_first: bool,
) -> list[Mention]:
    where: list[str] = []
    args: list[object] = []
    if account is not None:
        where.append("account = ?")
        args.append(account)
    if after_id:
        where.append("key > ?")
        args.append(mention_key(after_id))
    if before_id:
        where.append("key < ?")
        args.append(mention_key(before_id))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "DESC" if newest_first else "ASC"
    rows = db.execute(
        f"SELECT {MENTION_COLUMNS} FROM mentions {clause}"
        f" ORDER BY key {order}, account {order} LIMIT ?",
        (*args, max(limit, 0)),
    ).fetchall()
    return [_mention(row) for row in rows]


def _get_cursor(db: sqlite3.Connection, account: str) -> str | None:
    row = db.execute(
        "SELECT since_id FROM mention_cursors WHERE account = ?", (account,)
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _put_cursor(db: sqlite3.Connection, account: str, since_id: str) -> None:
    db.execute(
        "INSERT INTO mention_cursors (account, since_id) VALUES (?, ?)"
        " ON CONFLICT (account) DO UPDATE SET since_id = excluded.since_id",
        (account, since_id),
    )


class SqliteStore:
    """The outbox store in one SQLite file; calls are serialised on the connection's thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn = ThreadedConnection("social-store")
        self._run = self._conn.run
        # Rate windows are read before every send; this process is the file's only writer, so
        # a write-through cache (absent windows included) saves a hop per send.
        self._windows: dict[tuple[str, str], RateWindow | None] = {}
        # Likewise the rows this process wrote last (a write RPC re-reads its item after sending).
        self._rows: OrderedDict[str, OutboxItem] = OrderedDict()
        # Outbox writes that queue while one is on the store's thread go out together.
        self._writes = SqliteWrites(self._conn, "social-store")

    def _remember(self, item: OutboxItem | None) -> None:
        if item is None:
            return
        known = self._rows.get(item.id)
        if known is not None and known.updated_at > item.updated_at:
            return
        self._rows[item.id] = item
        self._rows.move_to_end(item.id)
        while len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)

    async def open(self) -> None:
        # Autocommit: each write below is a single statement or runs in BEGIN IMMEDIATE.
        await self._conn.open(self._path, "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
        await self._conn.run(lambda db: db.executescript(SCHEMA))
        await self._conn.run(_migrate)

    async def close(self) -> None:
        await self._writes.wait()
        await self._conn.close()
        self._windows.clear()
        self._rows.clear()

    async def create(self, new: NewItem, now: float) -> tuple[OutboxItem, bool]:
        item, created = await self._writes.write(lambda db: _create(db, new, now))
        self._remember(item)
        return item, created

    async def get(self, item_id: str) -> OutboxItem | None:
        cached = self._rows.get(item_id)
        if cached is not None:
            return cached
        item = await self._run(_select, item_id)
        self._remember(item)
        return item

    async def transition(
        self, item_id: str, expected: State, to: State, now: float, change: Change = NO_CHANGE
    ) -> OutboxItem | None:
        check_transition(expected, to)
        item = await self._writes.write(
            lambda db: _transition(db, item_id, expected, to, now, change)
        )
        self._remember(item)
        return item

    async def due(self, now: float, limit: int) -> Sequence[OutboxItem]:
        return await self._run(_due, now, limit)

    async def list_items(
        self,
        *,
        account: str | None = None,
        states: Collection[State] = (),
        after_id: str = "",
        limit: int = 50,
        agent: str | None = None,
    ) -> Sequence[OutboxItem]:
        return await self._run(_list, account, tuple(states), after_id, limit, agent)

    async def count_sent(self, account: str, actions: Collection[Action], since: float) -> int:
        return await self._run(_count_sent, account, tuple(actions), since)

    async def get_window(self, account: str, endpoint: str) -> RateWindow | None:
        key = (account, endpoint)
        if key not in self._windows:
            read = await self._run(_get_window, account, endpoint)
            self._windows.setdefault(key, read)  # a put_window meanwhile wins
        return self._windows[key]

    async def put_window(self, window: RateWindow) -> None:
        await self._run(_put_window, window)
        self._windows[window.account, window.endpoint] = window

    async def add_mentions(
        self,
        account: str,
        posts: Sequence[PostRecord],
        now: float,
        *,
        keep: int,
        depths: Mapping[str, int] | None = None,
    ) -> list[Mention]:
        return await self._run(_add_mentions, account, tuple(posts), now, keep, dict(depths or {}))

    async def list_mentions(
        self,
        *,
        account: str | None = None,
        after_id: str = "",
        before_id: str = "",
        limit: int = 50,
        newest_first: bool = False,
    ) -> Sequence[Mention]:
        return await self._run(_list_mentions, account, after_id, before_id, limit, newest_first)

    async def get_mention_cursor(self, account: str) -> str | None:
        return await self._run(_get_cursor, account)

    async def put_mention_cursor(self, account: str, since_id: str) -> None:
        await self._run(_put_cursor, account, since_id)
