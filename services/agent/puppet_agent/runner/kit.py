"""What every piece of a persona's life works with, handed over once by the runner."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from puppet_agent.fleet import Fleet
from puppet_agent.settings import AgentSettings


@dataclass(frozen=True)
class Kit:
    """The fleet, settings and clock; the runner's one rng (so draws keep their order); and
    the personas running here, as of the call."""

    fleet: Fleet
    settings: AgentSettings
    clock: Callable[[], float]
    rng: random.Random
    running: Callable[[], list[str]]


class Piece:
    """Base of the runner's pieces: the kit's parts as attributes."""

    def __init__(self, kit: Kit) -> None:
        self._fleet = kit.fleet
        self._settings = kit.settings
        self._clock = kit.clock
        self._rng = kit.rng
        self._running = kit.running
