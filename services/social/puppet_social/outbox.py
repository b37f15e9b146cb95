"""The outbox: every network write at most once, paced by the planner, recoverable after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol, runtime_checkable

from puppet_social.network import (
    AccountRef,
    CredentialsRejected,
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

_LINK = re.compile(r"https?://\S+")

CLAIM_SLACK_S = 5.0
"""How far before a claim reconcile looks for the post (clock skew between us and the network)."""

THREAD_WAIT_S = 1.0
"""How soon a thread looks again at a part another pass is sending."""

REVIEW_WAIT_S = 60.0
"""How soon a thread looks again at a part waiting for a person (an uncertain send)."""

HOLD_RECHECK_S = 300.0
"""How long an item of a held account (credentials rejected) waits before it is looked at again."""

HELD = "CREDENTIALS_REJECTED"
"""error_reason of items waiting because their account's credentials were rejected."""


def thread_text(parts: Sequence[str]) -> str:
    """A thread's parts as the one text column of its outbox row."""
    return json.dumps(list(parts), ensure_ascii=False)


def thread_parts(text: str) -> list[str]:
    """The parts stored by thread_text."""
    parts = json.loads(text)
    assert isinstance(parts, list)
    return [str(part) for part in parts]


def part_request_id(request_id: str, index: int) -> str:
    """The idempotency key of a thread's part `index` (0-based)."""
    return f"{request_id}#part-{index}"


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
        on_hold: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._network = network
        self._planner = planner
        self._clock = clock
        self._account_ref = account_ref
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_attempts = max_attempts
        self._unsettled: set[str] = set()
        self._held: set[str] = set()
        self._on_hold = on_hold

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
        if action in (Action.POST, Action.REPLY, Action.QUOTE, Action.THREAD) and not text:
            raise ValueError(f"{action} needs text")
        if action not in (Action.POST, Action.THREAD) and not target_post_id:
            raise ValueError(f"{action} needs target_post_id")
        state = State.NEEDS_REVIEW if review else State.QUEUED
        new = NewItem(account, request_id, action, text, target_post_id, state, agent)
        return await self._store.create(new, self._clock())

    async def submit(
        self,
        account: str,
        request_id: str,
        action: Action,
        *,
        text: str = "",
        target_post_id: str = "",
        agent: str = "",
    ) -> tuple[OutboxItem, bool]:
        """enqueue, then one send attempt of a new item now (a write RPC); its row and if new.

        When the planner lets it go at once, the row is created already claimed (sending), so
        the send costs one store step fewer; it is just as durable before the network call.
        """
        if account in self._held or action is Action.THREAD:
            return await self._enqueue_and_send(
                account, request_id, action, text, target_post_id, agent
            )
        if action in POSTING and not text:
            raise ValueError(f"{action} needs text")
        if action is not Action.POST and not target_post_id:
            raise ValueError(f"{action} needs target_post_id")
        plan = await self._planner.plan(account, ENDPOINTS[action])
        if not plan.go:
            return await self._enqueue_and_send(
                account, request_id, action, text, target_post_id, agent
            )
        new = NewItem(account, request_id, action, text, target_post_id, State.SENDING, agent)
        item, created = await self._store.create(new, self._clock())
        if not created:
            return item, False
        return await self._deliver(item), True

    async def _enqueue_and_send(
        self,
        account: str,
        request_id: str,
        action: Action,
        text: str,
        target_post_id: str,
        agent: str,
    ) -> tuple[OutboxItem, bool]:
        item, new = await self.enqueue(
            account, request_id, action, text=text, target_post_id=target_post_id, agent=agent
        )
        if new and item.state is State.QUEUED:
            item = await self.send_now(item)
        return item, new

    async def approve(self, item_id: str) -> OutboxItem | None:
        """needs_review -> approved; None if the item is not awaiting review."""
        change = Change(next_attempt_at=self._clock())
        return await self._move(item_id, State.NEEDS_REVIEW, State.APPROVED, change)

    async def reject(self, item_id: str, reason: str = "REJECTED") -> OutboxItem | None:
        """needs_review -> rejected; None if the item is not awaiting review."""
        change = Change(error_reason=reason)
        return await self._move(item_id, State.NEEDS_REVIEW, State.REJECTED, change)

    def hold(self, account: str) -> None:
        """Send nothing for the account: the network rejected its credentials (HTTP 401).

        Its items wait instead of failing or backing off, until release. The set is in memory;
        on_hold (called when a send meets a 401) is where the owner persists the hold, and a
        restart holds again the accounts it persisted.
        """
        if account not in self._held:
            log.warning("credentials of %s rejected: its outbox is held", account)
        self._held.add(account)

    def held(self, account: str) -> bool:
        return account in self._held

    async def release(self, account: str) -> int:
        """Resume a held account (its credentials verified again); how many items became due."""
        self._held.discard(account)
        now, moved, after = self._clock(), 0, ""
        waiting = (State.QUEUED, State.APPROVED)
        while page := await self._store.list_items(account=account, states=waiting, after_id=after):
            for item in page:
                if item.error_reason == HELD and item.next_attempt_at > now:
                    change = Change(next_attempt_at=now, error_reason="")
                    moved += await self._move(item.id, item.state, item.state, change) is not None
            after = page[-1].id
        return moved

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
        for item_id in sorted(self._unsettled):
            item = await self._store.get(item_id)
            if item is not None and item.state is State.SENDING:
                handled += await self._reconcile(item)
            else:
                self._unsettled.discard(item_id)
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
        if item.account in self._held:
            later = Change(next_attempt_at=self._clock() + HOLD_RECHECK_S, error_reason=HELD)
            await self._move(item.id, item.state, item.state, later)
            return 0
        if item.action is Action.THREAD:
            return await self._send_thread(item)
        plan = await self._planner.plan(item.account, ENDPOINTS[item.action])
        if not plan.go:
            await self._move(item.id, item.state, item.state, Change(next_attempt_at=plan.at))
            return 0
        now = self._clock()
        claim = Change(claimed_at=now, add_attempt=True)
        claimed = await self._store.transition(item.id, item.state, State.SENDING, now, claim)
        if claimed is None:
            return 0
        await self._deliver(claimed)
        return 1

    async def _deliver(self, claimed: OutboxItem) -> OutboxItem:
        """The network call of a claimed (sending) item and its outcome; the item's new row."""
        try:
            result = await self._call(claimed)
        except NetworkError as error:
            await self._planner.record(claimed.account, error.rate)
            await self._failed_call(claimed, error)
            return await self._store.get(claimed.id) or claimed
        await self._planner.record(claimed.account, result.rate)
        post_id = result.post.id if result.post is not None else ""
        change = Change(network_post_id=post_id)
        sent = await self._move(claimed.id, State.SENDING, State.SENT, change)
        return sent or await self._store.get(claimed.id) or claimed

    async def _send_thread(self, item: OutboxItem) -> int:
        """Send the parts in order, each its own item replying to the one before.

        Every part's row is keyed by part_request_id, so a retry or a restart finds the parts
        already sent instead of posting them again; part i+1 is created only once part i is sent.
        """
        now = self._clock()
        claim = Change(claimed_at=now, add_attempt=True)
        claimed = await self._store.transition(item.id, item.state, State.SENDING, now, claim)
        if claimed is None:
            return 0
        sent: list[str] = []
        previous = claimed.target_post_id
        for index, text in enumerate(thread_parts(claimed.text)):
            action = Action.REPLY if previous else Action.POST
            key = part_request_id(claimed.request_id, index)
            new = NewItem(claimed.account, key, action, text, previous)
            part, _ = await self._store.create(new, self._clock())
            if (part.action, part.text, part.target_post_id) != (action, text, previous):
                change = Change(error_reason="REQUEST_ID_REUSED")
                await self._move(claimed.id, State.SENDING, State.FAILED, change)
                return 1
            due = part.next_attempt_at <= self._clock()
            if part.state in (State.QUEUED, State.APPROVED) and due:
                await self._send(part)
                part = await self._store.get(part.id) or part
            if part.state is State.SENT:
                sent.append(part.network_post_id)
                previous = part.network_post_id
                continue
            if part.state in (State.FAILED, State.REJECTED):
                change = Change(error_reason=part.error_reason or "PART_FAILED")
                await self._move(claimed.id, State.SENDING, State.FAILED, change)
                return 1
            wait = {State.SENDING: THREAD_WAIT_S, State.NEEDS_REVIEW: REVIEW_WAIT_S}
            later = part.next_attempt_at
            if part.state in wait:
                later = self._clock() + wait[part.state]
            change = Change(next_attempt_at=max(later, now))
            await self._move(claimed.id, State.SENDING, State.QUEUED, change)
            return int(bool(sent))
        done = Change(network_post_id=" ".join(sent))
        await self._move(claimed.id, State.SENDING, State.SENT, done)
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
            case Action.THREAD:
                raise AssertionError("threads are sent part by part")

    async def _failed_call(self, item: OutboxItem, error: NetworkError) -> None:
        now = self._clock()
        if isinstance(error, RateLimited):
            retry = Change(next_attempt_at=reset_of(error.rate, now), error_reason="RATE_LIMITED")
            await self._move(item.id, State.SENDING, State.QUEUED, retry)
            return
        if isinstance(error, CredentialsRejected):
            # Nothing was done; the item waits for credentials that work (release).
            self.hold(item.account)
            if self._on_hold is not None:
                await self._on_hold(item.account)
            retry = Change(next_attempt_at=now + HOLD_RECHECK_S, error_reason=HELD)
            await self._move(item.id, State.SENDING, State.QUEUED, retry)
            return
        if isinstance(error, Transient) and item.attempts < self._max_attempts:
            delay = min(self._backoff_s * 2 ** (item.attempts - 1), self._max_backoff_s)
            retry = Change(next_attempt_at=now + delay, error_reason="TRANSIENT")
            await self._move(item.id, State.SENDING, State.QUEUED, retry)
            return
        reason = _reason(error)
        if item.action is Action.DELETE and isinstance(error, Unauthorized):
            reason = "NOT_OWN_POST"  # the network refuses to delete someone else's post
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
        try:
            posts = await self._network.recent_posts(self._account_ref(item.account), since=since)
        except NetworkError as error:
            # Not knowing is not "not sent": keep it claimed and look again on the next pass.
            log.warning("reconcile of outbox item %s must wait: %s", item.id, error)
            self._unsettled.add(item.id)
            return 0
        self._unsettled.discard(item.id)
        for post in posts:
            if _same(item, post):
                return await self._settle(item, State.SENT, Change(network_post_id=post.id))
        return await self._requeue(item)

    async def _requeue(self, item: OutboxItem) -> int:
        return await self._settle(item, State.QUEUED, Change(next_attempt_at=self._clock()))

    async def _settle(self, item: OutboxItem, to: State, change: Change) -> int:
        return int(await self._move(item.id, State.SENDING, to, change) is not None)


def _same(item: OutboxItem, post: PostRecord) -> bool:
    # X shows links as t.co links: compare the texts with every link blanked out.
    if _LINK.sub("", post.text).strip() != _LINK.sub("", item.text).strip():
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
