"""Group commit: calls for one key that queue up while a flush is in flight go out together."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Flush = Callable[[str, Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """Per key, one flush at a time; whatever queued meanwhile is the next flush's group.

    A lone call is flushed at once, so there is no waiting for company: groups form only from
    calls that would otherwise queue behind a write. flush(key, items) answers one outcome per
    item (a result or the exception for that item alone). A group stops growing at max_weight
    (the item that crosses it still joins), which bounds one transaction's size. A caller that is
    cancelled before its item is flushed is dropped from the group.
    """

    def __init__(self, flush: Flush[T, R], *, weight: Callable[[T], int], max_weight: int) -> None:
        self._flush = flush
        self._weight = weight
        self._max_weight = max_weight
        self._queues: dict[str, list[tuple[T, asyncio.Future[R]]]] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}

    async def submit(self, key: str, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, []).append((item, future))
        if key not in self._drains:
            # A fresh context: the drain serves many calls, so it must not wear the first one's
            # request id in its logs.
            self._drains[key] = asyncio.create_task(
                self._drain(key), name=f"group-commit {key}", context=contextvars.Context()
            )
        return await future

    def _take(self, key: str) -> list[tuple[T, asyncio.Future[R]]]:
        queue = self._queues.get(key, [])
        group: list[tuple[T, asyncio.Future[R]]] = []
        weight = taken = 0
        for item, future in queue:
            taken += 1
            if future.done():  # cancelled while queued
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
