"""The outbox: every network write at most once, paced by the planner, recoverable after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol, runtime_checkable

from puppet_social.network import (
    AccountRef,
    DuplicateContent,
    Network,
    NetworkError,
    PostNotFound,
    PostRecord,
    RateLimited,
    Result,
    Transient,
    Unauthorized,
)
from puppet_social.planner import ENDPOINTS, RatePlanner, reset_of
from puppet_social.store import (
    POSTING,
    Action,
    Change,
    NewItem,
    OutboxItem,
    OutboxStore,
    State,
)

log = logging.getLogger(__name__)

CLAIM_SLACK_S = 5.0
"""How far before a claim reconcile looks for the post (clock skew between us and the network)."""


@runtime_checkable
class PostHistory(Protocol):
    """What reconcile needs besides the Network port: the account's own recent posts."""

    async def recent_posts(self, account: AccountRef, *, since: float) -> Sequence[PostRecord]:
        """The account's posts created at or after `since` (Unix seconds), oldest first."""
        ...


class Outbox:
    """Queues actions per (account, request_id) and sends due ones through the network."""

    def __init__(
        self,
        store: OutboxStore,
        network: Network,
        planner: RatePlanner,
        clock: Callable[[], float],
        *,
        account_ref: Callable[[str], AccountRef] = AccountRef,
        backoff_s: float = 2.0,
        max_backoff_s: float = 900.0,
        max_attempts: int = 8,
    ) -> None:
        self._store = store
        self._network = network
        self._planner = planner
        self._clock = clock
        self._account_ref = account_ref
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_attempts = max_attempts

    async def enqueue(
        self,
        account: str,
        request_id: str,
        action: Action,
        *,
        text: str = "",
        target_post_id: str = "",
        review: bool = False,
        agent: str = "",
    ) -> tuple[OutboxItem, bool]:
        """The item (and True if new); a repeated request_id returns the first item unchanged."""
        if action in (Action.POST, Action.REPLY, Action.QUOTE) and not text:
            raise ValueError(f"{action} needs text")
        if action is not Action.POST and not target_post_id:
            raise ValueError(f"{action} needs target_post_id")
        state = State.NEEDS_REVIEW if review else State.QUEUED
        new = NewItem(account, request_id, action, text, target_post_id, state, agent)
        return await self._store.create(new, self._clock())

    async def approve(self, item_id: str) -> OutboxItem | None:
        """needs_review -> approved; None if the item is not awaiting review."""
        change = Change(next_attempt_at=self._clock())
        return await self._move(item_id, State.NEEDS_REVIEW, State.APPROVED, change)

    async def reject(self, item_id: str, reason: str = "REJECTED") -> OutboxItem | None:
        """needs_review -> rejected; None if the item is not awaiting review."""
        change = Change(error_reason=reason)
        return await self._move(item_id, State.NEEDS_REVIEW, State.REJECTED, change)

    async def get(self, item_id: str) -> OutboxItem | None:
        return await self._store.get(item_id)

    async def items(
        self,
        *,
        account: str | None = None,
        states: Collection[State] = (),
        after_id: str = "",
        limit: int = 50,
        agent: str | None = None,
    ) -> Sequence[OutboxItem]:
        """One page of items in creation order; after_id is the previous page's last id."""
        return await self._store.list_items(
            account=account, states=states, after_id=after_id, limit=limit, agent=agent
        )

    async def send_due(self, limit: int = 50) -> int:
        """Send what is due now; the number of items that reached a final state or were retried."""
        handled = 0
        for item in await self._store.due(self._clock(), limit):
            handled += await self._send(item)
        return handled

    async def send_now(self, item: OutboxItem) -> OutboxItem:
        """One send attempt of this item alone, now (a write RPC's first attempt); its new row."""
        await self._send(item)
        return await self._store.get(item.id) or item

    async def run(self, stop: asyncio.Event, *, interval_s: float = 1.0) -> None:
        """Reconcile once, then send due items until `stop` is set."""
        await self.reconcile()
        while not stop.is_set():
            try:
                await self.send_due()
            except Exception:
                log.exception("outbox pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def reconcile(self) -> int:
        """Settle items a crash left in sending without posting twice; how many were settled."""
        settled, after = 0, ""
        while page := await self._store.list_items(states=[State.SENDING], after_id=after):
            for item in page:
                settled += await self._reconcile(item)
            after = page[-1].id
        return settled

    async def _move(
        self, item_id: str, expected: State, to: State, change: Change
    ) -> OutboxItem | None:
        return await self._store.transition(item_id, expected, to, self._clock(), change)

    async def _send(self, item: OutboxItem) -> int:
        plan = await self._planner.plan(item.account, ENDPOINTS[item.action])
        if not plan.go:
            await self._move(item.id, item.state, item.state, Change(next_attempt_at=plan.at))
            return 0
        now = self._clock()
        claim = Change(claimed_at=now, add_attempt=True)
        claimed = await self._store.transition(item.id, item.state, State.SENDING, now, claim)
        if claimed is None:
            return 0
        try:
            result = await self._call(claimed)
        except NetworkError as error:
            await self._planner.record(claimed.account, error.rate)
            await self._failed_call(claimed, error)
            return 1
        await self._planner.record(claimed.account, result.rate)
        post_id = result.post.id if result.post is not None else ""
        await self._move(claimed.id, State.SENDING, State.SENT, Change(network_post_id=post_id))
        return 1

    async def _call(self, item: OutboxItem) -> Result:
        account = self._account_ref(item.account)
        target = item.target_post_id
        match item.action:
            case Action.POST:
                return await self._network.create_post(account, item.text)
            case Action.REPLY:
                return await self._network.create_post(account, item.text, reply_to=target)
            case Action.QUOTE:
                return await self._network.create_post(account, item.text, quote_of=target)
            case Action.DELETE:
                try:
                    return await self._network.delete_post(account, target)
                except PostNotFound as gone:
                    # Deleted by an earlier attempt whose commit a crash lost: the goal holds.
                    return Result(rate=gone.rate)
            case Action.LIKE:
                return await self._network.like(account, target)
            case Action.REPOST:
                return await self._network.repost(account, target)

    async def _failed_call(self, item: OutboxItem, error: NetworkError) -> None:
        now = self._clock()
        if isinstance(error, RateLimited):
            retry = Change(next_attempt_at=reset_of(error.rate, now), error_reason="RATE_LIMITED")
            await self._move(item.id, State.SENDING, State.QUEUED, retry)
            return
        if isinstance(error, Transient) and item.attempts < self._max_attempts:
            delay = min(self._backoff_s * 2 ** (item.attempts - 1), self._max_backoff_s)
            retry = Change(next_attempt_at=now + delay, error_reason="TRANSIENT")
            await self._move(item.id, State.SENDING, State.QUEUED, retry)
            return
        reason = _reason(error)
        log.warning("outbox item %s failed: %s (%s)", item.id, reason, error)
        await self._move(item.id, State.SENDING, State.FAILED, Change(error_reason=reason))

    async def _reconcile(self, item: OutboxItem) -> int:
        if item.action not in POSTING:
            # Likes, reposts and deletes are idempotent on the network: sending again is safe.
            return await self._requeue(item)
        if not isinstance(self._network, PostHistory):
            # Without the account's own posts we cannot tell: a person decides.
            return await self._settle(
                item, State.NEEDS_REVIEW, Change(error_reason="SEND_UNCERTAIN")
            )
        since = (item.claimed_at or item.created_at) - CLAIM_SLACK_S
        posts = await self._network.recent_posts(self._account_ref(item.account), since=since)
        for post in posts:
            if _same(item, post):
                return await self._settle(item, State.SENT, Change(network_post_id=post.id))
        return await self._requeue(item)

    async def _requeue(self, item: OutboxItem) -> int:
        return await self._settle(item, State.QUEUED, Change(next_attempt_at=self._clock()))

    async def _settle(self, item: OutboxItem, to: State, change: Change) -> int:
        return int(await self._move(item.id, State.SENDING, to, change) is not None)


def _same(item: OutboxItem, post: PostRecord) -> bool:
    if post.text != item.text:
        return False
    if item.action is Action.REPLY:
        return post.in_reply_to_id == item.target_post_id
    if item.action is Action.QUOTE:
        return post.quote_of_id == item.target_post_id
    return post.in_reply_to_id is None and post.quote_of_id is None


def _reason(error: NetworkError) -> str:
    if isinstance(error, DuplicateContent):
        return "DUPLICATE_CONTENT"
    if isinstance(error, Unauthorized):
        return "UNAUTHORIZED"
    if isinstance(error, PostNotFound):
        return "POST_NOT_FOUND"
    if isinstance(error, Transient):
        return "RETRIES_EXHAUSTED"
    return "NETWORK_ERROR"
