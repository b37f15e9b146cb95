"""The sandbox network: a local X stored in SQLite, with X's ids, mentions and rate limits."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from puppet_runtime.groups import SqliteWrites
from puppet_runtime.sqlite import ThreadedConnection

from puppet_social.network import (
    AccountRef,
    NetworkError,
    PostNotFound,
    PostRecord,
    RateInfo,
    Result,
)
from puppet_social.network import sandbox_db as db
from puppet_social.network.sandbox_db import (
    UNLIMITED,
    AccountNotFound,
    HandleTaken,
    SandboxAccount,
    TierLimits,
)

__all__ = [
    "DEFAULT_TIERS",
    "AccountNotFound",
    "HandleTaken",
    "SandboxAccount",
    "SandboxNetwork",
    "TierLimits",
]

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIERS: Mapping[str, TierLimits] = {
    # X API v2 per-user limits of POST /2/tweets and GET /2/users/:id/mentions per access tier.
    "free": TierLimits(posts_per_15min=17, posts_per_24h=17, mention_reads_per_15min=1),
    "basic": TierLimits(posts_per_15min=100, posts_per_24h=100, mention_reads_per_15min=10),
    "pro": TierLimits(posts_per_15min=100, posts_per_24h=10_000, mention_reads_per_15min=300),
    "unlimited": UNLIMITED,
}


class SandboxNetwork:
    """The Network port over a local X-like network, plus what only the sandbox can do.

    Credentials are ignored: an AccountRef is the sandbox account with its handle (or, without a
    handle, its user id); an unknown one is Unauthorized (AccountNotFound). Every call is one
    function on the database's own thread, so calls are serialised and each write is atomic.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        tiers: Mapping[str, TierLimits] | None = None,
    ) -> None:
        self._path = path
        self._clock = clock
        self._tiers = {**DEFAULT_TIERS, **(tiers or {})}
        self._db = ThreadedConnection("sandbox-network")
        # Writes that queue while one is on the database's thread go out together.
        self._writes = SqliteWrites(self._db, "sandbox-network")

    async def open(self) -> None:
        await self._db.open(self._path, *db.PRAGMAS)
        await self._db.run(lambda conn: conn.executescript(db.SCHEMA))

    async def close(self) -> None:
        await self._writes.wait()
        await self._db.close()

    async def _write(
        self,
        work: Callable[Concatenate[sqlite3.Connection, P], T | NetworkError],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """work in a transaction (grouped with concurrent writes); a NetworkError it returns is
        committed, then raised (as db.write)."""
        return await self._writes.write(lambda conn: work(conn, *args, **kwargs))

    # Sandbox-only.

    async def create_account(
        self,
        handle: str,
        *,
        display_name: str = "",
        operator: bool = False,
        tier: str | None = None,
    ) -> AccountRef:
        """A new account; tier defaults to "unlimited" for the operator, else "free".

        Raises ValueError for a handle that is not 1-15 of [A-Za-z0-9_], a display name over 50
        characters or an unknown tier; HandleTaken (a ValueError) when another account has the
        handle, compared case-insensitively.
        """
        if not db.HANDLE.fullmatch(handle):
            raise ValueError(f"handle {handle!r} is not 1-15 characters of [A-Za-z0-9_]")
        if len(display_name) > 50:
            raise ValueError("display_name is longer than 50 characters")
        tier = tier or ("unlimited" if operator else "free")
        if tier not in self._tiers:
            raise ValueError(f"unknown tier {tier!r}; known: {sorted(self._tiers)}")
        account = await self._write(
            db.create_account, handle, display_name, operator, tier, self._clock()
        )
        return AccountRef(handle=account.handle, user_id=account.user_id)

    async def list_accounts(self) -> list[SandboxAccount]:
        """Every account, oldest first."""
        return await self._db.run(db.list_accounts)

    async def timeline(self, *, after_id: str | None = None, limit: int = 50) -> list[PostRecord]:
        """Every account's posts, newest first; after_id = last id of the previous page."""
        return await self._db.run(db.page, None, after_id, limit)

    async def posts_of(
        self, handle: str, *, after_id: str | None = None, limit: int = 50
    ) -> list[PostRecord]:
        """One account's posts, newest first; AccountNotFound for an unknown handle."""
        return await self._db.run(db.page, handle, after_id, limit)

    async def recent_posts(self, account: AccountRef, *, since: float) -> list[PostRecord]:
        """The account's posts created at or after since (Unix seconds), oldest first."""
        return await self._db.run(db.recent_posts, self._as(account), since)

    # The Network port.

    async def me(self, account: AccountRef) -> tuple[str, str]:
        caller = await self._db.run(db.resolve, account.handle, account.user_id, self._tiers)
        return str(caller.user_id), caller.handle

    async def create_post(
        self,
        account: AccountRef,
        text: str,
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
    ) -> Result:
        post, rate = await self._write(
            db.create_post, self._as(account), text, reply_to, quote_of, self._clock()
        )
        return Result(post, rate)

    async def delete_post(self, account: AccountRef, post_id: str) -> Result:
        rate = await self._write(db.delete_post, self._as(account), post_id, self._clock())
        return Result(rate=rate)

    async def like(self, account: AccountRef, post_id: str) -> Result:
        rate = await self._write(db.react, self._as(account), "likes", post_id, self._clock())
        return Result(rate=rate)

    async def repost(self, account: AccountRef, post_id: str) -> Result:
        rate = await self._write(db.react, self._as(account), "reposts", post_id, self._clock())
        return Result(rate=rate)

    async def get_post(self, account: AccountRef, post_id: str) -> Result:
        rate = RateInfo(db.LOOKUP)
        post = await self._db.run(db.get_post, self._as(account), post_id)
        if post is None:
            raise PostNotFound(f"post {post_id} does not exist", rate)
        return Result(post, rate)

    async def conversation(
        self, account: AccountRef, post_id: str, *, limit: int = 20
    ) -> Sequence[PostRecord]:
        posts = await self._db.run(db.conversation, self._as(account), post_id, limit)
        if posts is None:
            raise PostNotFound(f"post {post_id} does not exist", RateInfo(db.SEARCH))
        return posts

    async def mentions(
        self, account: AccountRef, *, since_id: str | None = None, limit: int = 100
    ) -> tuple[Sequence[PostRecord], RateInfo | None]:
        limit = min(max(limit, 1), 100)
        return await self._write(db.mentions, self._as(account), since_id, limit, self._clock())

    def _as(self, account: AccountRef) -> db.Acting:
        return db.Acting(account, self._tiers)
