"""GroupCommit and SqliteWrites: who flushes with whom, and what each caller gets back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from puppet_runtime.groups import GroupCommit, SqliteWrites
from puppet_runtime.sqlite import ThreadedConnection


class Recorder:
    """A flush that records its groups and can be held; "bad" items fail alone, "boom" all."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def flush(self, key: str, items: Sequence[str]) -> list[str | BaseException]:
        self.groups.append(list(items))
        await self.hold.wait()
        if "boom" in items:
            raise RuntimeError("the whole group failed")
        return [ValueError(i) if i == "bad" else f"{key}:{i}" for i in items]


async def test_calls_queued_behind_a_flush_go_out_together() -> None:
    rec = Recorder()
    commit = GroupCommit(rec.flush, weight=len, max_weight=10)
    rec.hold.clear()
    first = asyncio.create_task(commit.submit("a", "x"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commit.submit("a", i)) for i in ("p", "bad", "q")]
    other = asyncio.create_task(commit.submit("b", "y"))  # another key: its own flush
    await asyncio.sleep(0)
    rec.hold.set()
    assert await first == "a:x"
    got = await asyncio.gather(*rest, return_exceptions=True)
    assert got[0] == "a:p"
    assert isinstance(got[1], ValueError)
    assert got[2] == "a:q"
    assert await other == "b:y"
    assert rec.groups == [["x"], ["y"], ["p", "bad", "q"]]


async def test_max_weight_cancelled_callers_and_failed_groups() -> None:
    rec = Recorder()
    commit = GroupCommit(rec.flush, weight=len, max_weight=4)
    rec.hold.clear()
    first = asyncio.create_task(commit.submit("a", "x"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commit.submit("a", "gone"))
    queued = [asyncio.create_task(commit.submit("a", i)) for i in ("ab", "cd", "e", "boom", "f")]
    await asyncio.sleep(0)
    gone.cancel()
    rec.hold.set()
    await first
    got = await asyncio.gather(*queued, return_exceptions=True)
    assert got[:2] == ["a:ab", "a:cd"]
    assert all(isinstance(g, RuntimeError) for g in got[2:4])  # a flush that raises fails its group
    assert got[4] == "a:f"
    # "gone" was cancelled before its flush; a group stops once it weighs 4 or more.
    assert rec.groups == [["x"], ["ab", "cd"], ["e", "boom"], ["f"]]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_sqlite_writes_share_a_transaction_and_fail_alone(tmp_path: Path) -> None:
    conn = ThreadedConnection("test-groups")
    await conn.open(tmp_path / "g.sqlite3", "PRAGMA journal_mode=WAL")
    await conn.run(lambda db: db.execute("CREATE TABLE t (v INTEGER)"))
    writes = SqliteWrites(conn, "test")

    def insert(v: int) -> Callable[[sqlite3.Connection], int | BaseException]:
        def work(db: sqlite3.Connection) -> int | BaseException:
            db.execute("INSERT INTO t VALUES (?)", (v,))
            if v == 2:
                raise ValueError("two")  # rolled back alone
            if v == 3:
                return LookupError("three")  # committed, then raised
            return v

        return work

    calls = [asyncio.create_task(writes.write(insert(v))) for v in range(5)]
    await asyncio.sleep(0)
    calls[4].cancel()  # its caller gives up; the write still happens
    got = await asyncio.gather(*calls, return_exceptions=True)
    assert got[:2] == [0, 1]
    assert isinstance(got[2], ValueError)
    assert isinstance(got[3], LookupError)
    assert isinstance(got[4], asyncio.CancelledError)
    await writes.wait()
    rows = await conn.run(lambda db: db.execute("SELECT v FROM t ORDER BY v").fetchall())
    assert rows == [(0,), (1,), (3,), (4,)]
    await conn.close()
