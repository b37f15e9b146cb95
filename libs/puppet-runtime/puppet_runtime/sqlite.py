"""A sqlite3 connection owned by one thread: each call runs a whole function there, in one hop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[sqlite3.Connection, P], T]


class ThreadedConnection:
    """Runs functions of a sqlite3 connection on the connection's own thread.

    aiosqlite hops to its thread once per statement, and every hop costs a loop wake-up; here a
    whole transaction is one function and one hop. One thread also serialises the calls, so a
    writer needs no lock of its own. A call whose awaiter is cancelled still runs to its end.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def open(self, path: Path, *pragmas: str) -> None:
        """Connect in autocommit mode (transactions are explicit) and run ``pragmas``."""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        self._db = await self._submit(_connect, path, pragmas)

    async def close(self) -> None:
        pool, db = self._pool, self._db
        self._pool = self._db = None
        if pool is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(pool, db.close)
        await asyncio.to_thread(pool.shutdown, True)

    async def run(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """work(connection, *args, **kwargs) on the connection's thread."""
        if self._db is None:
            raise RuntimeError(f"{self._name} is not open")
        return await self._submit(partial(work, self._db, *args, **kwargs))

    async def _submit(self, call: Callable[..., T], *args: object) -> T:
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)


def _connect(path: Path, pragmas: tuple[str, ...]) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (BEGIN ... COMMIT in transaction()).
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in pragmas:
        db.execute(pragma)
    return db


def transaction(db: sqlite3.Connection, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """work inside BEGIN IMMEDIATE ... COMMIT, rolled back if it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        out = work(db, *args, **kwargs)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return out
