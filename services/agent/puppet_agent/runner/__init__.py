"""Each persona's life on this replica: which lives run here (leases, pauses) and their loops.

The loops themselves are pieces of their own: ``rhythms`` (posting schedule, random events, mood
decay), ``reacting`` (mentions and reactions), ``effects`` (what events do), ``trades``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from puppet_agent.fleet import Fleet
from puppet_agent.leases import Lease, LeaseStore
from puppet_agent.leases.leaser import Leaser
from puppet_agent.life.events import ALL, EventEngine, Priority
from puppet_agent.life.reactions import LoopGuard
from puppet_agent.runner.effects import EventEffects
from puppet_agent.runner.kit import Kit
from puppet_agent.runner.reacting import Reactions
from puppet_agent.runner.rhythms import Rhythms
from puppet_agent.runner.trades import Trades, trade_facts
from puppet_agent.settings import AgentSettings
from puppet_agent.store import EventRecord

__all__ = ["Runner", "trade_facts"]

log = logging.getLogger(__name__)


class Runner:
    """Runs the lives of the personas of this replica (the fleet's Life)."""

    def __init__(
        self,
        fleet: Fleet,
        settings: AgentSettings,
        *,
        leases: LeaseStore | None = None,
        replica_id: str = "local",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fleet = fleet
        self._settings = settings
        self._clock = clock
        self._rng = random.Random(settings.random_seed)
        self.guard = LoopGuard(is_persona=lambda who: who in self._known, clock=time.monotonic)
        self._known: set[str] = set()
        self._paused: set[str] = set()
        self._lives: dict[str, list[asyncio.Task[None]]] = {}
        kit = Kit(fleet, settings, clock, self._rng, self._running)
        self._rhythms = Rhythms(kit)
        self._reactions = Reactions(
            kit, guard=self.guard, is_paused=lambda who: who in self._paused
        )
        self._trades = Trades(kit)
        effects = EventEffects(kit, self._reactions)
        self._engine = EventEngine(clock=clock)
        self._engine.on(ALL, effects.handle)
        self._started = False
        self._leases = leases
        self.replica_id = replica_id
        self._leaser = (
            Leaser(
                leases,
                replica_id,
                self._running,
                ttl_s=settings.lease_ttl_s,
                on_acquired=self._acquired,
                on_lost=self._lost,
                rng=self._rng,
            )
            if leases is not None and settings.run_lives
            else None
        )
        self._tick_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._sync_task: asyncio.Task[None] | None = None

    # Life

    def persona_changed(self, agent_id: str) -> None:
        if self._started:
            task = asyncio.get_running_loop().create_task(self._refresh(agent_id))
            self._background.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("refreshing a persona's life failed", exc_info=task.exception())

    def persona_removed(self, agent_id: str) -> None:
        self._known.discard(agent_id)
        self._paused.discard(agent_id)
        self._stop_life(agent_id)

    def event_created(self, event: EventRecord) -> None:
        delay = 0.0 if event.execute_after is None else event.execute_after - self._clock()
        self._engine.submit(
            event.type,
            event.data,
            targets=event.targets,
            priority=Priority.parse(event.priority),
            delay_s=max(delay, 0.0) if event.execute_after is not None else 0.0,
            event_id=event.id,
        )

    def next_post_time(self, agent_id: str) -> float | None:
        return self._rhythms.next_post.get(agent_id)

    async def lease(self, agent_id: str) -> tuple[str, float | None]:
        """Who holds the persona's lease (any replica's, read from the shared lease store)."""
        if self._leaser is not None and self._leases is not None:
            held = (await self._leases.holders()).get(agent_id)
            return (held.replica_id, held.expires_at) if held else ("", None)
        return (self.replica_id, None) if agent_id in self._lives else ("", None)

    async def leases(self) -> dict[str, tuple[str, float | None]]:
        """Every persona's lease holder (one read of the shared lease store)."""
        if self._leaser is not None and self._leases is not None:
            held = await self._leases.holders()
            return {k: (v.replica_id, v.expires_at) for k, v in held.items()}
        return {agent_id: (self.replica_id, None) for agent_id in self._lives}

    # lifecycle

    async def start(self) -> None:
        self._started = True
        await self._sync()
        if self._leaser is not None:
            assert self._leases is not None
            await self._leases.open()
            await self._leaser.start()
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())
        elif self._settings.run_lives:
            for agent_id in self._running():
                self._start_life(agent_id)
        for event in await self._fleet.store.pending_events():
            self.event_created(event)
        await self._engine.start()

    async def stop(self) -> None:
        self._started = False
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        if self._leaser is not None:
            with contextlib.suppress(Exception):
                await self._leaser.stop(release=True)
        for agent_id in list(self._lives):
            self._stop_life(agent_id)
        await self._engine.stop()
        if self._leases is not None and self._leaser is not None:
            await self._leases.close()

    async def _sync(self) -> None:
        """Persona ids and pause flags from the store (other replicas create and pause too)."""
        records = await self._fleet.store.list_personas(limit=100_000)
        self._known = {r.id for r in records}
        self._paused = {r.id for r in records if r.paused}
        for agent_id in list(self._lives):
            if agent_id not in self._known or agent_id in self._paused:
                self._stop_life(agent_id)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_ttl_s / 3)
            try:
                await self._sync()
                await self._tick()
            except Exception:
                log.exception("persona sync failed")

    async def _tick(self) -> None:
        if self._leaser is not None:
            async with self._tick_lock:
                await self._leaser.tick()

    async def _acquired(self, lease: Lease) -> None:
        if lease.key in self._known and lease.key not in self._paused:
            self._stop_life(lease.key)
            self._start_life(lease.key)

    async def _lost(self, agent_id: str) -> None:
        self._stop_life(agent_id)

    async def idle(self) -> None:
        """Wait until no due event is queued or being handled (for tests and shutdown)."""
        await self._engine.idle()

    async def _refresh(self, agent_id: str) -> None:
        record = await self._fleet.store.get_persona(agent_id)
        if record is None:
            return self.persona_removed(agent_id)
        self._known.add(agent_id)
        self._stop_life(agent_id)
        if record.paused:
            self._paused.add(agent_id)
            self._rhythms.next_post.pop(agent_id, None)
        else:
            self._paused.discard(agent_id)
            if self._leaser is None and self._settings.run_lives:
                self._start_life(agent_id)
            elif self._leaser is not None:
                if agent_id in self._leaser.held:
                    self._start_life(agent_id)
                await self._tick()
        return None

    def _running(self) -> list[str]:
        return sorted(self._known - self._paused)

    def _start_life(self, agent_id: str) -> None:
        loops = {
            "post": self._rhythms.schedule,
            "mentions": self._reactions.mentions,
            "mood": self._rhythms.moods,
            "ambient": self._rhythms.ambient,
        }
        if self._fleet.clients.chain is not None:
            loops["trading"] = self._trades.loop
        loop = asyncio.get_running_loop()
        self._lives[agent_id] = [
            loop.create_task(run(agent_id), name=f"{name}-{agent_id}")
            for name, run in loops.items()
        ]

    def _stop_life(self, agent_id: str) -> None:
        for task in self._lives.pop(agent_id, []):
            task.cancel()
        self._rhythms.next_post.pop(agent_id, None)

    async def trade_once(self, agent_id: str) -> str:
        """One legacy trading check; returns what happened (for logs)."""
        return await self._trades.trade_once(agent_id)
