"""Group commit: writes for one key that queue behind a flush in flight go out together."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, cast

from puppet_runtime.sqlite import ThreadedConnection, transaction

T = TypeVar("T")
R = TypeVar("R")
Flush = Callable[[str, Sequence[T]], Awaitable[Sequence[R | BaseException]]]
Write = Callable[[sqlite3.Connection], object]


class GroupCommit(Generic[T, R]):
    """Per key, one flush at a time; whatever queued meanwhile is the next flush's group.

    A lone call is flushed at once, so there is no waiting for company: groups form only from
    calls that would otherwise queue behind a write. flush(key, items) answers one outcome per
    item (a result or the exception for that item alone). A group stops growing at max_weight
    (the item that crosses it still joins), which bounds one transaction's size. A caller that is
    cancelled before its item is flushed is dropped from the group, unless keep_cancelled: then
    its item is written all the same (a write, once asked for, happens).

    With lone_inline, a lone call flushes in the caller's own task, saving a task and its hops
    (a sequential writer's whole cost, on a busy machine); cancelling that caller then cancels its
    flush, so only a flush that is safe to cancel may use it (ThreadedConnection.run is: the
    connection's thread finishes the work anyway).
    """

    def __init__(
        self,
        flush: Flush[T, R],
        *,
        weight: Callable[[T], int],
        max_weight: int,
        keep_cancelled: bool = False,
        lone_inline: bool = False,
    ) -> None:
        self._flush = flush
        self._weight = weight
        self._max_weight = max_weight
        self._keep_cancelled = keep_cancelled
        self._lone_inline = lone_inline
        self._inline: set[str] = set()  # keys whose lone call is flushing in its caller's task
        self._queues: dict[str, list[tuple[T, asyncio.Future[R]]]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, item: T) -> R:
        """Queue item for key's next flush; its outcome, raised if it is an exception."""
        busy = key in self._drains or key in self._inline
        if self._lone_inline and not busy:
            return await self._alone(key, item)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((item, future))
        if not busy:
            self._start_drain(key)
        return await future

    async def wait(self) -> None:
        """Until every queued item is flushed (before closing what the flushes write to)."""
        if self._drains:
            await asyncio.wait(list(self._drains.values()))

    async def _alone(self, key: str, item: T) -> R:
        self._inline.add(key)
        try:
            [outcome] = await self._flush(key, [item])
        finally:
            self._inline.discard(key)
            if key in self._queues:
                self._start_drain(key)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _start_drain(self, key: str) -> None:
        # A fresh context: the drain serves many calls, so it must not wear the first one's
        # request id in its logs.
        self._drains[key] = asyncio.create_task(
            self._drain(key), name=f"group-commit {key}", context=contextvars.Context()
        )

    def _take(self, key: str) -> list[tuple[T, asyncio.Future[R]]]:
        queue = self._queues.get(key, [])
        group: list[tuple[T, asyncio.Future[R]]] = []
        weight = taken = 0
        for item, future in queue:
            taken += 1
            if future.done() and not self._keep_cancelled:  # cancelled while queued
                continue
            group.append((item, future))
            weight += self._weight(item)
            if weight >= self._max_weight:
                break
        del queue[:taken]
        if not queue:
            self._queues.pop(key, None)
        return group

    async def _drain(self, key: str) -> None:
        try:
            while group := self._take(key):
                await self._flush_group(key, group)
        except asyncio.CancelledError:  # shutting down: nobody will flush what is queued
            for _, future in self._queues.pop(key, []):
                future.cancel()
            raise
        finally:
            del self._drains[key]

    async def _flush_group(self, key: str, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._flush(key, [item for item, _ in group])
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as err:
            outcomes = [err] * len(group)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


GROUP_WRITES = 256
"""Most writes SqliteWrites commits in one transaction."""


class SqliteWrites:
    """Writes of one ThreadedConnection, group-committed: a lone write goes at once in its own
    transaction; writes that arrive while one is on the connection's thread go next as one group:
    one hop to the thread and one transaction for the lot, each write in a savepoint.

    A write's caller may be cancelled; the write still happens (as with ThreadedConnection.run).
    """

    def __init__(self, conn: ThreadedConnection, name: str) -> None:
        self._conn = conn
        self._name = name
        self._groups: GroupCommit[Write, object] = GroupCommit(
            self._flush,
            weight=lambda _: 1,
            max_weight=GROUP_WRITES,
            keep_cancelled=True,
            lone_inline=True,
        )

    async def write(self, work: Callable[[sqlite3.Connection], T | BaseException]) -> T:
        """work(db) in a transaction; its result, or the exception it raised or returned."""
        return cast(T, await self._groups.submit(self._name, work))

    async def wait(self) -> None:
        """Until every write asked for is done (before closing the connection)."""
        await self._groups.wait()

    async def _flush(self, _name: str, group: Sequence[Write]) -> Sequence[object]:
        if len(group) == 1:
            return [await self._conn.run(transaction, group[0])]
        return await self._conn.run(_apply, group)


def _apply(db: sqlite3.Connection, group: Sequence[Write]) -> list[object]:
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
