"""ThreadedConnection: every call runs on the connection's one thread; transactions roll back."""

import sqlite3
import threading
from pathlib import Path

import pytest
from puppet_runtime.sqlite import ThreadedConnection, transaction


async def test_calls_run_on_one_thread_and_transactions_roll_back(tmp_path: Path) -> None:
    conn = ThreadedConnection("test-sqlite")
    await conn.open(tmp_path / "t.sqlite3", "PRAGMA journal_mode=WAL")
    await conn.run(lambda db: db.execute("CREATE TABLE t (v INTEGER)"))
    threads = {await conn.run(lambda _: threading.get_ident()) for _ in range(5)}
    assert len(threads) == 1
    assert threading.get_ident() not in threads

    def insert_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await conn.run(transaction, insert_then_fail)
    await conn.run(transaction, lambda db: db.execute("INSERT INTO t VALUES (2)"))
    rows = await conn.run(lambda db: db.execute("SELECT v FROM t").fetchall())
    assert rows == [(2,)]
    await conn.close()
    with pytest.raises(RuntimeError, match="test-sqlite is not open"):
        await conn.run(lambda db: db.execute("SELECT 1"))
