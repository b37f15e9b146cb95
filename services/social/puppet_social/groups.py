"""Group commit over a ThreadedConnection: writes that queue behind one go out together."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable
from typing import TypeVar, cast

from puppet_runtime.sqlite import ThreadedConnection, transaction

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], object]

GROUP_MAX = 256
"""Most writes committed in one transaction."""


def _apply(db: sqlite3.Connection, group: list[Write]) -> list[object]:
    """Run a group of writes in one transaction, each in a savepoint of its own.

    A write that raises is rolled back alone and answers its exception; the others commit. A
    write may also return an exception: it is committed, then raised to its caller.
    """
    outcomes: list[object] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for work in group:
            db.execute("SAVEPOINT one")
            try:
                outcomes.append(work(db))
            except Exception as error:
                db.execute("ROLLBACK TO one")
                outcomes.append(error)
            db.execute("RELEASE one")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return outcomes


def _alone(db: sqlite3.Connection, work: Write) -> object:
    return transaction(db, lambda conn: work(conn))


class GroupCommit:
    """Writes of one connection: a lone write goes at once, in its own transaction; writes that
    arrive while one is on the connection's thread queue and then go as one group: one hop to
    the thread and one transaction for the lot, each write in a savepoint.

    A write's caller may be cancelled; the write still happens (as with ThreadedConnection.run).
    The busy flag only forms groups: the connection's one thread serialises everything anyway.
    """

    def __init__(self, conn: ThreadedConnection, name: str) -> None:
        self._conn = conn
        self._name = name
        self._queued: list[tuple[Write, asyncio.Future[object]]] = []
        self._drain: asyncio.Task[None] | None = None
        self._busy = False

    async def write(self, work: Callable[[sqlite3.Connection], T | BaseException]) -> T:
        """work(db) in a transaction; its result, or the exception it raised or returned."""
        if self._busy:
            future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            self._queued.append((work, future))
            outcome = await future
        else:
            self._busy = True
            try:
                outcome = await self._conn.run(_alone, work)
            finally:
                self._busy = False
                self._start_drain()
        if isinstance(outcome, BaseException):
            raise outcome
        return cast(T, outcome)

    async def wait(self) -> None:
        """Until every queued write is done (before closing the connection)."""
        if self._drain is not None:
            await asyncio.wait([self._drain])

    def _start_drain(self) -> None:
        if self._queued and self._drain is None:
            self._busy = True
            # A fresh context: the drain serves many calls and must not wear one's request id.
            self._drain = asyncio.create_task(
                self._flush(), name=f"{self._name} group commit", context=contextvars.Context()
            )

    async def _flush(self) -> None:
        group: list[tuple[Write, asyncio.Future[object]]] = []
        try:
            while self._queued:
                group, self._queued = self._queued[:GROUP_MAX], self._queued[GROUP_MAX:]
                try:
                    outcomes = await self._conn.run(_apply, [work for work, _ in group])
                except Exception as error:
                    outcomes = [error] * len(group)
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if not future.done():  # done: its caller was cancelled
                        future.set_result(outcome)
        except asyncio.CancelledError:  # closing: nobody will answer what is queued
            for _, future in [*group, *self._queued]:
                future.cancel()
            self._queued.clear()
            raise
        finally:
            self._drain = None
            self._busy = False
