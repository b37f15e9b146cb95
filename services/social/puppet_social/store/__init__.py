"""The outbox store port: outbox rows, their state machine, rate-limit windows and mentions."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from puppet_social.network import PostRecord


class State(StrEnum):
    """Where an outbox item is in its life; sent, failed and rejected are final."""

    QUEUED = "queued"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"


class Action(StrEnum):
    """What an outbox item does on the network."""

    POST = "post"
    REPLY = "reply"
    QUOTE = "quote"
    DELETE = "delete"
    LIKE = "like"
    REPOST = "repost"
    THREAD = "thread"
    """Drives one part item per text (POST or REPLY rows keyed by part_request_id)."""


POSTING = frozenset({Action.POST, Action.REPLY, Action.QUOTE})
"""Actions that create a post (and count against the 24-hour post cap)."""

TRANSITIONS: dict[State, frozenset[State]] = {
    # queued/approved -> itself only reschedules (next_attempt_at); sending -> queued is a retry.
    State.QUEUED: frozenset({State.QUEUED, State.SENDING}),
    State.NEEDS_REVIEW: frozenset({State.APPROVED, State.REJECTED}),
    State.APPROVED: frozenset({State.APPROVED, State.SENDING}),
    State.SENDING: frozenset({State.SENT, State.FAILED, State.QUEUED, State.NEEDS_REVIEW}),
    State.SENT: frozenset(),
    State.FAILED: frozenset(),
    State.REJECTED: frozenset(),
}


class InvalidTransition(ValueError):
    """The state machine does not allow this move."""


def check_transition(current: State, to: State) -> None:
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"outbox item cannot go from {current} to {to}")


def new_id(now: float) -> str:
    """A sortable item id: microseconds since the epoch in hex, then 32 random bits."""
    return f"{int(now * 1_000_000):014x}{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class NewItem:
    """What enqueue asks the store to create."""

    account: str
    request_id: str
    action: Action
    text: str = ""
    target_post_id: str = ""
    state: State = State.QUEUED
    """QUEUED, NEEDS_REVIEW, or SENDING: created already claimed for a send that starts now."""
    agent: str = ""
    """The persona that asked (agents/{agent}); empty for the operator."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One outbox row; times are Unix seconds."""

    id: str
    account: str
    request_id: str
    action: Action
    text: str
    target_post_id: str
    state: State
    attempts: int
    next_attempt_at: float
    network_post_id: str
    error_reason: str
    claimed_at: float | None
    created_at: float
    updated_at: float
    agent: str = ""
    """The persona that asked (agents/{agent}); empty for the operator."""


@dataclass(frozen=True, slots=True)
class Change:
    """Fields a transition sets besides the state; None leaves a field as it is."""

    next_attempt_at: float | None = None
    network_post_id: str | None = None
    error_reason: str | None = None
    claimed_at: float | None = None
    add_attempt: bool = False


NO_CHANGE = Change()


@dataclass(frozen=True, slots=True)
class RateWindow:
    """The last headroom seen for one (account, endpoint), from a RateInfo."""

    account: str
    endpoint: str
    limit: int | None
    remaining: int | None
    reset_at: float | None
    day_limit: int | None
    day_remaining: int | None
    day_reset_at: float | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class Mention:
    """A post that mentions `account`, as the poller stored it; received_at is Unix seconds."""

    account: str
    post: PostRecord
    received_at: float
    depth: int = 0
    """Conversation depth: 0 for a root post, n for the n-th reply (see MentionPoller)."""


def mention_key(post_id: str) -> str:
    """A sort key that orders numeric post ids numerically (X ids fit in 20 digits)."""
    return post_id.zfill(20)


def created_item(new: NewItem, now: float) -> OutboxItem:
    """The row of a new item; one created sending is claimed now (its first attempt)."""
    claimed = new.state is State.SENDING
    return OutboxItem(
        id=new_id(now),
        account=new.account,
        request_id=new.request_id,
        action=new.action,
        text=new.text,
        target_post_id=new.target_post_id,
        state=new.state,
        attempts=int(claimed),
        next_attempt_at=now,
        network_post_id="",
        error_reason="",
        claimed_at=now if claimed else None,
        created_at=now,
        updated_at=now,
        agent=new.agent,
    )


class OutboxStore(Protocol):
    """Persistence of the outbox; every method is one atomic step."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, new: NewItem, now: float) -> tuple[OutboxItem, bool]:
        """The new row and True, or the existing row of (account, request_id) and False."""
        ...

    async def get(self, item_id: str) -> OutboxItem | None: ...

    async def transition(
        self, item_id: str, expected: State, to: State, now: float, change: Change = NO_CHANGE
    ) -> OutboxItem | None:
        """Compare-and-set: the updated row, or None if the row is missing or not `expected`.

        Raises InvalidTransition when the state machine forbids expected -> to.
        """
        ...

    async def due(self, now: float, limit: int) -> Sequence[OutboxItem]:
        """Queued or approved rows with next_attempt_at <= now, soonest first."""
        ...

    async def list_items(
        self,
        *,
        account: str | None = None,
        states: Collection[State] = (),
        after_id: str = "",
        limit: int = 50,
        agent: str | None = None,
    ) -> Sequence[OutboxItem]:
        """Rows by id (creation order); after_id is the last id of the previous page.

        agent (agents/{agent}) keeps only that persona's rows; "" only the operator's.
        """
        ...

    async def count_sent(self, account: str, actions: Collection[Action], since: float) -> int:
        """Rows of the account with one of `actions` that became sent at or after `since`."""
        ...

    async def get_window(self, account: str, endpoint: str) -> RateWindow | None: ...

    async def put_window(self, window: RateWindow) -> None: ...

    async def add_mentions(
        self,
        account: str,
        posts: Sequence[PostRecord],
        now: float,
        *,
        keep: int,
        depths: Mapping[str, int] | None = None,
    ) -> list[Mention]:
        """Store the posts not seen before for the account; the new ones, in input order.

        depths maps a post id to its conversation depth (0 when absent).

        Keeps the newest `keep` mentions per account; a post at or below the newest one dropped
        (the seen floor) counts as seen, so the seen-set stays bounded and nothing repeats.
        """
        ...

    async def list_mentions(
        self,
        *,
        account: str | None = None,
        after_id: str = "",
        before_id: str = "",
        limit: int = 50,
        newest_first: bool = False,
    ) -> Sequence[Mention]:
        """Stored mentions (every account's for None) with after_id < post id < before_id."""
        ...

    async def get_mention_cursor(self, account: str) -> str | None:
        """The since_id of the account's next mentions read; None before the first one."""
        ...

    async def put_mention_cursor(self, account: str, since_id: str) -> None: ...
