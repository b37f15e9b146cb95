"""The network port: what the outbox and the mention poller need from X or the sandbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class Credentials:
    """OAuth 1.0a user context of one account (X's "API key" is the consumer key)."""

    api_key: SecretStr
    api_key_secret: SecretStr
    access_token: SecretStr
    access_token_secret: SecretStr


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The account an action runs as; user_id is empty until the account was verified."""

    handle: str
    user_id: str = ""
    credentials: Credentials | None = None


@dataclass(frozen=True, slots=True)
class PostRecord:
    """One post as the network reports it."""

    id: str
    author_id: str
    author_handle: str
    text: str
    created_at: datetime
    conversation_id: str
    in_reply_to_id: str | None = None
    quote_of_id: str | None = None
    mentioned_handles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateInfo:
    """Headroom of one endpoint after a call, from x-rate-limit-* and x-user-limit-24hour-*."""

    endpoint: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    """Unix seconds when the 15-minute window resets."""
    day_limit: int | None = None
    day_remaining: int | None = None
    day_reset_at: float | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """A call's outcome: the post it made or read (if any) and the headroom it reported."""

    post: PostRecord | None = None
    rate: RateInfo | None = None


class NetworkError(Exception):
    """Base of network failures; messages never contain credentials."""

    def __init__(self, message: str, rate: RateInfo | None = None) -> None:
        super().__init__(message)
        self.rate = rate


class RateLimited(NetworkError):
    """429: wait until ``rate.reset_at`` (or ``rate.day_reset_at`` for the 24-hour cap)."""


class DuplicateContent(NetworkError):
    """X refused the text as a duplicate of a recent post (legacy code 187): never retry."""


class Unauthorized(NetworkError):
    """401/403: the credentials are wrong, revoked or lack the scope."""


class CredentialsRejected(Unauthorized):
    """401: the network refuses the credentials themselves, for every call, until they change
    (a 403 refusing one action stays a plain Unauthorized)."""


class PostNotFound(NetworkError):
    """The post (to reply to, quote, like, delete or read) does not exist."""


class Transient(NetworkError):
    """Timeouts, connection errors and 5xx: safe to retry later."""


class Network(Protocol):
    """X API v2 or the sandbox network, as one account sees it."""

    async def me(self, account: AccountRef) -> tuple[str, str]:
        """(user_id, handle) of the account; verifies its credentials."""
        ...

    async def create_post(
        self,
        account: AccountRef,
        text: str,
        *,
        reply_to: str | None = None,
        quote_of: str | None = None,
    ) -> Result:
        """Post, reply (reply_to) or quote (quote_of); the result carries the new post."""
        ...

    async def delete_post(self, account: AccountRef, post_id: str) -> Result: ...

    async def like(self, account: AccountRef, post_id: str) -> Result: ...

    async def repost(self, account: AccountRef, post_id: str) -> Result: ...

    async def get_post(self, account: AccountRef, post_id: str) -> Result:
        """The post, or PostNotFound."""
        ...

    async def conversation(
        self, account: AccountRef, post_id: str, *, limit: int = 20
    ) -> Sequence[PostRecord]:
        """The posts of post_id's conversation up to it, oldest first (context for a reply)."""
        ...

    async def mentions(
        self, account: AccountRef, *, since_id: str | None = None, limit: int = 100
    ) -> tuple[Sequence[PostRecord], RateInfo | None]:
        """Posts mentioning the account newer than since_id, oldest first."""
        ...

    async def close(self) -> None: ...
