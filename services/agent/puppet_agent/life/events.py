"""EventEngine: a priority queue of events whose delayed events fire at their due time.

Fixed on purpose (CONTRACT §11 #9): the legacy engine only moved a delayed event into the queue
when some *other* event was created after its due time, so a lone delayed event never fired.
Here a timer wakes the engine at the earliest due time. Also fixed: one failing handler (or one
persona's failure, see ``for_each_persona``) is logged and isolated; it never skips the other
handlers or personas and never stops the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

ALL = "*"
"""Register a handler under this type to receive every event."""

KNOWN_TYPES = ("news", "mood_shift", "interaction_prompt")
"""The built-in types; any other 1-64 character type is a custom event."""


class Priority(IntEnum):
    """Higher first; equal priorities keep their arrival order."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, text: str) -> Priority:
        """``"critical"``/``"high"``/``"normal"``/``"low"`` (any case); ``""`` means normal."""
        try:
            return cls[text.upper()] if text else cls.NORMAL
        except KeyError:
            raise ValueError(f"unknown priority {text!r}") from None


@dataclass(frozen=True)
class Event:
    """One event; ``targets`` empty means every persona; ``due_at`` None means immediate."""

    id: str
    type: str
    data: Any
    created_at: float
    targets: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL
    due_at: float | None = None

    def targets_persona(self, persona_id: str) -> bool:
        """Exact id match (legacy matched substrings when targets was a string)."""
        return not self.targets or persona_id in self.targets


@dataclass(frozen=True)
class ProcessedEvent:
    """An event after its handlers finished; ``failed`` counts handlers that raised or timed out."""

    event: Event
    processed_at: float
    failed: int = 0


Handler = Callable[[Event], Awaitable[None]]


class EventEngine:
    """Runs handlers for events in priority order, one event at a time.

    Handlers of one event run concurrently; each is bounded by ``handler_timeout_s``. The clock
    stamps events and decides when delayed ones are due; the engine sleeps on the real event loop
    until then (after moving an injected clock by hand, call ``wake()``).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        history_size: int = 1000,
        handler_timeout_s: float = 60.0,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._clock = clock
        self._timeout = handler_timeout_s
        self._new_id = new_id
        self._handlers: dict[str, list[Handler]] = {}
        self._ready: list[tuple[int, int, Event]] = []
        self._delayed: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self._history: deque[ProcessedEvent] = deque(maxlen=history_size)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def on(self, event_type: str, handler: Handler) -> None:
        """Call ``handler`` for every event of ``event_type`` (``ALL`` for every event)."""
        self._handlers.setdefault(event_type, []).append(handler)

    def submit(
        self,
        event_type: str,
        data: Any,
        *,
        targets: Iterable[str] = (),
        priority: Priority = Priority.NORMAL,
        delay_s: float = 0.0,
        event_id: str | None = None,
    ) -> Event:
        """Queue an event now, or for ``delay_s`` seconds from now when positive; returns it."""
        now = self._clock()
        event = Event(
            id=event_id or self._new_id(),
            type=event_type,
            data=data,
            created_at=now,
            targets=tuple(targets),
            priority=priority,
            due_at=now + delay_s if delay_s > 0 else None,
        )
        if event.due_at is None:
            self._push_ready(event)
        else:
            heapq.heappush(self._delayed, (event.due_at, next(self._seq), event))
        self._wake.set()
        return event

    def scheduled(self) -> list[Event]:
        """Delayed events not yet due, soonest first."""
        return [event for _, _, event in sorted(self._delayed)]

    def history(self, limit: int | None = None) -> list[ProcessedEvent]:
        """Processed events, oldest first; with ``limit``, only the newest ``limit``."""
        items = list(self._history)
        return items if limit is None else items[max(len(items) - limit, 0) :]

    def wake(self) -> None:
        """Re-check due events now (needed only after an injected clock jumped)."""
        self._promote_due()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until no due event is queued or being handled (delayed ones may still wait)."""
        await self._idle.wait()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-engine")

    async def stop(self) -> None:
        """Stop the loop; an event being handled is cancelled, queued ones stay queued."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> EventEngine:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _push_ready(self, event: Event) -> None:
        heapq.heappush(self._ready, (-event.priority, next(self._seq), event))
        self._idle.clear()

    def _promote_due(self) -> float | None:
        """Move due delayed events to the queue; seconds until the next one, or None."""
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            self._push_ready(heapq.heappop(self._delayed)[2])
        return self._delayed[0][0] - now if self._delayed else None

    async def _run(self) -> None:
        while True:
            until_next = self._promote_due()
            if self._ready:
                await self._dispatch(heapq.heappop(self._ready)[2])
                continue
            self._idle.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(until_next):
                    await self._wake.wait()

    async def _dispatch(self, event: Event) -> None:
        handlers = [*self._handlers.get(event.type, ()), *self._handlers.get(ALL, ())]
        outcomes = await asyncio.gather(*(self._call(h, event) for h in handlers))
        self._history.append(ProcessedEvent(event, self._clock(), outcomes.count(False)))

    async def _call(self, handler: Handler, event: Event) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await handler(event)
        except Exception:
            log.exception("handler %r failed on %s event %s", handler, event.type, event.id)
            return False
        return True


def for_each_persona(
    personas: Callable[[], Iterable[str]],
    handle: Callable[[str, Event], Awaitable[None]],
    *,
    concurrency: int = 16,
) -> Handler:
    """A handler that runs ``handle(persona_id, event)`` for every persona the event targets.

    Each persona's failure is logged and isolated (legacy skipped the remaining personas when one
    threw). At most ``concurrency`` personas are handled at once.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(persona_id: str, event: Event) -> None:
        async with gate:
            try:
                await handle(persona_id, event)
            except Exception:
                log.exception("persona %s failed on %s event %s", persona_id, event.type, event.id)

    async def handler(event: Event) -> None:
        chosen = [p for p in personas() if event.targets_persona(p)]
        await asyncio.gather(*(one(p, event) for p in chosen))

    return handler
