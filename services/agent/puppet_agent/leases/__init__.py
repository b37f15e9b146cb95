"""Persona leases for scale-out: a persona runs on exactly one live replica at a time.

A lease is a compare-and-set row per key (a persona id, or a replica's membership key): it is
taken only when free or expired, expiry is judged by the *store's* clock (not each replica's),
and every takeover increments the key's fencing token, so work stamped with an older token can
be recognised as stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MEMBER_PREFIX = "replica:"
"""Keys with this prefix are replica membership leases (see ``Leaser``), never persona ids."""


@dataclass(frozen=True)
class Lease:
    """``replica_id`` holds ``key`` until ``expires_at`` (store time, epoch seconds)."""

    key: str
    replica_id: str
    token: int
    """Fencing token: grows by one on every takeover of the key, never on a renewal."""
    expires_at: float


class LeaseStore(Protocol):
    """Compare-and-set leases. Every method is atomic on its key."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def try_acquire(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        """Take ``key`` if free, expired or already ours (then it is renewed); None if held."""
        ...

    async def renew(self, key: str, replica_id: str, ttl_s: float) -> Lease | None:
        """Extend our unexpired lease; None if it expired or someone else holds it."""
        ...

    async def renew_many(
        self, keys: Sequence[str], replica_id: str, ttl_s: float
    ) -> dict[str, Lease | None]:
        """``renew`` for each key, in one round trip (a replica renews all its leases at once)."""
        ...

    async def release(self, key: str, replica_id: str) -> bool:
        """Give ``key`` up if we hold it; its token is kept for the next takeover."""
        ...

    async def holders(self) -> dict[str, Lease]:
        """Every unexpired lease, by key."""
        ...
