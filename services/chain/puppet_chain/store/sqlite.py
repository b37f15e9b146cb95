"""SQLite adapter of the chain store: one file, JSON bodies beside the indexed columns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from puppet_runtime.sqlite import ThreadedConnection, transaction

from puppet_chain.store import (
    SPENDING,
    ActionRow,
    AuditQuery,
    AuditRow,
    Doc,
    ReceiptRow,
    Spending,
    State,
    WalletRow,
    action_doc,
    action_row,
    audit_doc,
    audit_row,
    receipt_doc,
    receipt_row,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wallets (
    wallet_id TEXT PRIMARY KEY, agent TEXT NOT NULL, address TEXT NOT NULL UNIQUE,
    sealed_key BLOB NOT NULL, create_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS policies (wallet_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    wallet_id TEXT NOT NULL, action_id TEXT NOT NULL, request_id TEXT NOT NULL,
    state INTEGER NOT NULL, create_time REAL NOT NULL, body TEXT NOT NULL,
    value_lamports INTEGER NOT NULL DEFAULT 0, value_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (wallet_id, action_id), UNIQUE (wallet_id, request_id));
CREATE INDEX IF NOT EXISTS actions_by_id ON actions (action_id);
CREATE INDEX IF NOT EXISTS actions_by_time ON actions (wallet_id, create_time);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, wallet_id TEXT NOT NULL, action TEXT NOT NULL,
    time REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_wallet ON audit (wallet_id, seq);
CREATE TABLE IF NOT EXISTS receipts (
    wallet_id TEXT NOT NULL, receipt_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (wallet_id, receipt_id));
CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, fingerprint TEXT, result TEXT);
CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);
"""


def _values(action: ActionRow) -> tuple[int, float]:
    return int(action.decision.get("value_lamports", 0)), float(
        action.decision.get("value_usd", 0.0)
    )


def _wallet(row: tuple[Any, ...]) -> WalletRow:
    return WalletRow(row[0], row[1], row[2], bytes(row[3]), row[4])


class SqliteStore:
    """The chain store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn = ThreadedConnection("chain-store")

    async def open(self) -> None:
        await self._conn.open(self._path, "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
        await self._conn.run(lambda db: db.executescript(_SCHEMA))

    async def close(self) -> None:
        await self._conn.close()

    async def add_wallet(self, wallet: WalletRow) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            try:
                db.execute(
                    "INSERT INTO wallets VALUES (?, ?, ?, ?, ?)",
                    (
                        wallet.wallet_id,
                        wallet.agent,
                        wallet.address,
                        wallet.sealed_key,
                        wallet.create_time,
                    ),
                )
            except sqlite3.IntegrityError:
                return False
            return True

        return await self._conn.run(work)

    async def get_wallet(self, wallet_id: str) -> WalletRow | None:
        def work(db: sqlite3.Connection) -> WalletRow | None:
            row = db.execute("SELECT * FROM wallets WHERE wallet_id = ?", (wallet_id,)).fetchone()
            return None if row is None else _wallet(row)

        return await self._conn.run(work)

    async def list_wallets(self, agent: str, after: str, limit: int) -> list[WalletRow]:
        def work(db: sqlite3.Connection) -> list[WalletRow]:
            rows = db.execute(
                "SELECT * FROM wallets WHERE wallet_id > ? AND (? = '' OR agent = ?)"
                " ORDER BY wallet_id LIMIT ?",
                (after, agent, agent, limit),
            ).fetchall()
            return [_wallet(row) for row in rows]

        return await self._conn.run(work)

    async def get_policy(self, wallet_id: str) -> Doc | None:
        def work(db: sqlite3.Connection) -> Doc | None:
            row = db.execute("SELECT body FROM policies WHERE wallet_id = ?", (wallet_id,))
            found = row.fetchone()
            return None if found is None else dict(json.loads(found[0]))

        return await self._conn.run(work)

    async def put_policy(self, wallet_id: str, policy: Doc) -> None:
        await self._conn.run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO policies VALUES (?, ?)", (wallet_id, json.dumps(policy))
            )
        )

    async def add_action(self, action: ActionRow) -> ActionRow:
        def work(db: sqlite3.Connection) -> ActionRow:
            found = db.execute(
                "SELECT body FROM actions WHERE wallet_id = ? AND request_id = ?",
                (action.wallet_id, action.request_id),
            ).fetchone()
            if found is not None:
                return action_row(json.loads(found[0]))
            db.execute(
                "INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    action.wallet_id,
                    action.action_id,
                    action.request_id,
                    int(action.state),
                    action.create_time,
                    json.dumps(action_doc(action)),
                    *_values(action),
                ),
            )
            return action

        return await self._conn.run(transaction, work)

    async def find_action(self, wallet_id: str, request_id: str) -> ActionRow | None:
        def work(db: sqlite3.Connection) -> ActionRow | None:
            found = db.execute(
                "SELECT body FROM actions WHERE wallet_id = ? AND request_id = ?",
                (wallet_id, request_id),
            ).fetchone()
            return None if found is None else action_row(json.loads(found[0]))

        return await self._conn.run(work)

    async def put_action(self, action: ActionRow) -> None:
        await self._conn.run(
            lambda db: db.execute(
                "UPDATE actions SET state = ?, body = ?, value_lamports = ?, value_usd = ?"
                " WHERE wallet_id = ? AND action_id = ?",
                (
                    int(action.state),
                    json.dumps(action_doc(action)),
                    *_values(action),
                    action.wallet_id,
                    action.action_id,
                ),
            )
        )

    async def get_action(self, wallet_id: str, action_id: str) -> ActionRow | None:
        def work(db: sqlite3.Connection) -> ActionRow | None:
            found = db.execute(
                "SELECT body FROM actions WHERE wallet_id = ? AND action_id = ?",
                (wallet_id, action_id),
            ).fetchone()
            return None if found is None else action_row(json.loads(found[0]))

        return await self._conn.run(work)

    async def list_actions(
        self, wallet_id: str | None, state: State | None, before: str, limit: int
    ) -> list[ActionRow]:
        def work(db: sqlite3.Connection) -> list[ActionRow]:
            rows = db.execute(
                "SELECT body FROM actions WHERE (? IS NULL OR wallet_id = ?)"
                " AND (? IS NULL OR state = ?) AND (? = '' OR action_id < ?)"
                " ORDER BY action_id DESC LIMIT ?",
                (wallet_id, wallet_id, state, state, before, before, limit),
            ).fetchall()
            return [action_row(json.loads(row[0])) for row in rows]

        return await self._conn.run(work)

    async def actions_since(self, wallet_id: str, since: float) -> list[ActionRow]:
        def work(db: sqlite3.Connection) -> list[ActionRow]:
            rows = db.execute(
                "SELECT body FROM actions WHERE wallet_id = ? AND create_time >= ?"
                " ORDER BY action_id",
                (wallet_id, since),
            ).fetchall()
            return [action_row(json.loads(row[0])) for row in rows]

        return await self._conn.run(work)

    async def spending(self, wallet_id: str, since: float, exclude: str) -> Spending:
        def work(db: sqlite3.Connection) -> Spending:
            row = db.execute(
                "SELECT COALESCE(SUM(value_lamports), 0), COALESCE(SUM(value_usd), 0.0),"
                " COUNT(*), MAX(create_time) FROM actions WHERE wallet_id = ?"
                " AND create_time >= ? AND action_id != ? AND state IN (?, ?, ?)",
                (wallet_id, since, exclude, *(int(s) for s in sorted(SPENDING))),
            ).fetchone()
            return Spending(int(row[0]), float(row[1]), int(row[2]), row[3])

        return await self._conn.run(work)

    async def append_audit(self, entry: AuditRow) -> AuditRow:
        def work(db: sqlite3.Connection) -> AuditRow:
            cursor = db.execute(
                "INSERT INTO audit (wallet_id, action, time, body) VALUES (?, ?, ?, '')",
                (entry.wallet_id, entry.action, entry.time),
            )
            seq = int(cursor.lastrowid or 0)
            doc = audit_doc(entry) | {"seq": seq}
            db.execute("UPDATE audit SET body = ? WHERE seq = ?", (json.dumps(doc), seq))
            return audit_row(doc)

        return await self._conn.run(transaction, work)

    async def list_audit(self, query: AuditQuery, after: int, limit: int) -> list[AuditRow]:
        def work(db: sqlite3.Connection) -> list[AuditRow]:
            rows = db.execute(
                "SELECT body FROM audit WHERE seq > ? AND (? IS NULL OR wallet_id = ?)"
                " AND (? = '' OR action = ?) AND (? IS NULL OR time >= ?)"
                " AND (? IS NULL OR time < ?) ORDER BY seq LIMIT ?",
                (
                    after,
                    query.wallet_id,
                    query.wallet_id,
                    query.action,
                    query.action,
                    query.start_time,
                    query.start_time,
                    query.end_time,
                    query.end_time,
                    limit,
                ),
            ).fetchall()
            return [audit_row(json.loads(row[0])) for row in rows]

        return await self._conn.run(work)

    async def add_receipt(self, receipt: ReceiptRow) -> None:
        await self._conn.run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?)",
                (receipt.wallet_id, receipt.receipt_id, json.dumps(receipt_doc(receipt))),
            )
        )

    async def get_receipt(self, wallet_id: str, receipt_id: str) -> ReceiptRow | None:
        def work(db: sqlite3.Connection) -> ReceiptRow | None:
            found = db.execute(
                "SELECT body FROM receipts WHERE wallet_id = ? AND receipt_id = ?",
                (wallet_id, receipt_id),
            ).fetchone()
            return None if found is None else receipt_row(json.loads(found[0]))

        return await self._conn.run(work)

    async def list_receipts(
        self, wallet_id: str | None, before: str, limit: int
    ) -> list[ReceiptRow]:
        def work(db: sqlite3.Connection) -> list[ReceiptRow]:
            rows = db.execute(
                "SELECT body FROM receipts WHERE (? IS NULL OR wallet_id = ?)"
                " AND (? = '' OR receipt_id < ?) ORDER BY receipt_id DESC LIMIT ?",
                (wallet_id, wallet_id, before, before, limit),
            ).fetchall()
            return [receipt_row(json.loads(row[0])) for row in rows]

        return await self._conn.run(work)

    async def acquire(self, key: str, owner: str, now: float, ttl_s: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            held = db.execute("SELECT owner, until FROM leases WHERE key = ?", (key,)).fetchone()
            if held is not None and held[0] != owner and held[1] > now:
                return False
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (key, owner, now + ttl_s))
            return True

        return await self._conn.run(transaction, work)

    async def release(self, key: str, owner: str) -> None:
        await self._conn.run(
            lambda db: db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))
        )

    async def recall(self, key: str) -> tuple[str, str] | None:
        def work(db: sqlite3.Connection) -> tuple[str, str] | None:
            row = db.execute(
                "SELECT fingerprint, result FROM requests WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self._conn.run(work)

    async def remember(self, key: str, fingerprint: str, result: str) -> tuple[str, str]:
        def work(db: sqlite3.Connection) -> tuple[str, str]:
            db.execute(
                "INSERT OR IGNORE INTO requests VALUES (?, ?, ?)", (key, fingerprint, result)
            )
            row = db.execute(
                "SELECT fingerprint, result FROM requests WHERE key = ?", (key,)
            ).fetchone()
            return str(row[0]), str(row[1])

        return await self._conn.run(transaction, work)
