"""Leaser: one replica's loop that holds a fair share of the personas and lets the rest go.

Every ``ttl_s / 3`` it renews its membership lease and its persona leases (dropping those it
lost), counts the live replicas by their membership leases, and then either takes free personas
up to its fair share ``ceil(personas / replicas)`` or releases the ones above it, so a new replica
gets work and a dead replica's personas (whose leases simply expire) move to the survivors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TypeVar

from puppet_agent.leases import MEMBER_PREFIX, Lease, LeaseStore

log = logging.getLogger(__name__)
T = TypeVar("T")

OnAcquired = Callable[[Lease], Awaitable[None]]
OnLost = Callable[[str], Awaitable[None]]


async def _nothing(_: object) -> None:
    return None


class Leaser:
    """Keeps ``replica_id``'s share of ``personas()`` leased in ``store``.

    ``on_acquired(lease)`` runs when a persona becomes ours (start its life, stamping work with
    ``lease.token``); ``on_lost(persona_id)`` when it stops being ours (stop its life). A failing
    callback is logged and does not stop the loop.
    """

    def __init__(
        self,
        store: LeaseStore,
        replica_id: str,
        personas: Callable[[], Collection[str]],
        *,
        ttl_s: float = 30.0,
        on_acquired: OnAcquired = _nothing,
        on_lost: OnLost = _nothing,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self.replica_id = replica_id
        self._personas = personas
        self.ttl_s = ttl_s
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._rng = rng or random.Random()
        self._held: dict[str, Lease] = {}
        self._renewed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> Mapping[str, Lease]:
        """The persona leases this replica holds, by persona id."""
        return dict(self._held)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"leaser-{self.replica_id}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop the loop; with ``release`` hand every lease back (a clean shutdown).

        ``release=False`` is what a crash looks like to the others: the leases just expire.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not release:
            return
        try:
            for persona_id in list(self._held):
                await self._drop(persona_id, release=True)
            await self._store.release(self._member_key, self.replica_id)
        except Exception:
            log.warning(
                "replica %s could not release its leases; they will expire", self.replica_id
            )
        self._held.clear()

    async def tick(self) -> None:
        """One round: membership, renewals, then take or give back to reach the fair share."""
        await self._store.try_acquire(self._member_key, self.replica_id, self.ttl_s)
        wanted = set(self._personas())
        await self._renew(wanted)
        live = await self._store.holders()
        replicas = {
            lease.replica_id for key, lease in live.items() if key.startswith(MEMBER_PREFIX)
        }
        share = math.ceil(len(wanted) / len(replicas | {self.replica_id}))
        if len(self._held) > share:
            for persona_id in self._rng.sample(sorted(self._held), len(self._held) - share):
                await self._drop(persona_id, release=True)
        else:
            free = sorted(p for p in wanted if p not in live)
            self._rng.shuffle(free)
            for persona_id in free:
                if len(self._held) >= share:
                    break
                await self._take(persona_id)

    @property
    def _member_key(self) -> str:
        return MEMBER_PREFIX + self.replica_id

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("lease round failed for replica %s", self.replica_id)
                await self._expire_unrenewed()
            await asyncio.sleep(self.ttl_s / 3)

    async def _expire_unrenewed(self) -> None:
        """Without a renewal for a whole ttl our leases may be someone else's: stop them."""
        if self._held and time.monotonic() - self._renewed_at >= self.ttl_s:
            log.warning("replica %s could not renew for %.1fs", self.replica_id, self.ttl_s)
            for persona_id in list(self._held):
                await self._drop(persona_id, release=False)

    async def _renew(self, wanted: set[str]) -> None:
        held = list(self._held)
        started = time.monotonic()
        renewed = await self._store.renew_many(held, self.replica_id, self.ttl_s) if held else {}
        self._renewed_at = started
        for persona_id in held:
            lease = renewed.get(persona_id)
            if lease is None:
                log.warning("replica %s lost the lease on %s", self.replica_id, persona_id)
                await self._drop(persona_id, release=False)
            elif persona_id not in wanted:
                await self._drop(persona_id, release=True)
            else:
                self._held[persona_id] = lease

    async def _take(self, persona_id: str) -> None:
        lease = await self._store.try_acquire(persona_id, self.replica_id, self.ttl_s)
        if lease is None:
            return
        self._held[persona_id] = lease
        await self._notify(self._on_acquired, lease)

    async def _drop(self, persona_id: str, *, release: bool) -> None:
        self._held.pop(persona_id, None)
        await self._notify(self._on_lost, persona_id)
        if release:
            await self._release(persona_id)

    async def _release(self, key: str) -> None:
        """Hand ``key`` back; if the store fails, the lease simply expires."""
        try:
            await self._store.release(key, self.replica_id)
        except Exception:
            log.warning("replica %s could not release %s; it will expire", self.replica_id, key)

    async def _notify(self, callback: Callable[[T], Awaitable[None]], arg: T) -> None:
        try:
            await callback(arg)
        except Exception:
            log.exception("lease callback failed for replica %s", self.replica_id)
