"""The mention poller: per-account since_id polling, de-duplication and fan-out to subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from puppet_social.network import AccountRef, Network, NetworkError, PostRecord, RateLimited
from puppet_social.planner import RatePlanner, reset_of
from puppet_social.store import Mention, OutboxStore, mention_key

__all__ = ["MENTIONS", "Mention", "MentionPoller", "MentionsLagged"]

log = logging.getLogger(__name__)

MENTIONS = "GET /2/users/:id/mentions"
REPLAY_PAGE = 200
DEPTH_CAP = 20
"""Mention.depth is walked at most this many replies up (deeper threads report the cap)."""
BACKLOG = 100
"""A first poll (no since_id yet) delivers at most this many of the newest mentions."""
_DEPTH_MEMO = 4096


class MentionsLagged(Exception):
    """A subscriber fell `queue_size` mentions behind the poller and was closed.

    Everything it was given is gap-free; it resumes by subscribing again with after_id set to
    the last post id it handled (the replay comes from the store).
    """


@dataclass(eq=False)
class _Subscriber:
    account: str | None
    queue: asyncio.Queue[Mention | None]
    lagged: bool = False
    closed: bool = False


@dataclass
class _Schedule:
    next_at: float
    failures: int = 0
    cursor: str | None = None
    cursor_loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MentionPoller:
    """Polls each account's mentions on its own schedule and delivers each new one once.

    Order per poll: read the network, store the posts not seen before (the store's bounded
    seen-set), save the since_id cursor, then hand the new mentions to subscribers. A crash
    between the steps loses nothing (stored mentions are replayed to subscribers that pass
    after_id) and repeats nothing (a re-read post is already in the seen-set).

    A subscriber whose queue (queue_size mentions) is full is closed: its iterator yields what it
    already holds, then raises MentionsLagged. The poller never waits for a subscriber.

    Backlog: an account's first poll (no since_id stored yet) stores and delivers the newest
    `backlog` mentions already on the network (at most one page of 100), oldest first; older
    ones are never read. Later polls read only what is newer than the cursor.

    Depth: each new mention's conversation depth is walked up its in_reply_to chain (through
    get_post, remembering depths already known, and stopping at once when the parent is the
    conversation root) to at most `depth_cap` replies. A parent that cannot be read (deleted,
    protected, rate limited, network down) ends the walk: the depth is then a lower bound.
    """

    def __init__(
        self,
        store: OutboxStore,
        network: Network,
        planner: RatePlanner,
        clock: Callable[[], float],
        *,
        account_ref: Callable[[str], AccountRef] = AccountRef,
        interval_s: float = 60.0,
        max_backoff_s: float = 900.0,
        accounts: Iterable[str] = (),
        stagger_s: float = 5.0,
        keep: int = 500,
        page_limit: int = 100,
        queue_size: int = 1000,
        backlog: int = BACKLOG,
        depth_cap: int = DEPTH_CAP,
    ) -> None:
        self._store = store
        self._network = network
        self._planner = planner
        self._clock = clock
        self._account_ref = account_ref
        self._interval_s = interval_s
        self._max_backoff_s = max_backoff_s
        self._stagger_s = stagger_s
        self._keep = keep
        self._page_limit = page_limit
        self._queue_size = queue_size
        self._backlog = max(backlog, 0)
        self._depth_cap = max(depth_cap, 0)
        self._depths: dict[str, int] = {}
        self._schedules: dict[str, _Schedule] = {}
        self._subscribers: set[_Subscriber] = set()
        self._wake = asyncio.Event()
        for account in accounts:
            self.add_account(account)

    @property
    def accounts(self) -> list[str]:
        return list(self._schedules)

    def add_account(self, account: str) -> None:
        """Poll this account too; the n-th account's first poll is n * stagger_s from now."""
        if account in self._schedules:
            return
        offset = (len(self._schedules) * self._stagger_s) % max(self._interval_s, 1e-9)
        self._schedules[account] = _Schedule(next_at=self._clock() + offset)
        self._wake.set()

    def remove_account(self, account: str) -> None:
        self._schedules.pop(account, None)

    def next_poll_at(self, account: str) -> float | None:
        """When the account is polled next (Unix seconds); None for an unknown account."""
        schedule = self._schedules.get(account)
        return None if schedule is None else schedule.next_at

    async def poll_once(self, account: str) -> list[Mention]:
        """One poll of the account now, if the planner allows it; the new mentions delivered."""
        self.add_account(account)
        schedule = self._schedules[account]
        async with schedule.lock:
            return await self._poll(account, schedule)

    async def run(self, stop: asyncio.Event, *, tick_s: float = 1.0) -> None:
        """Poll due accounts until `stop` is set; sleeps at most tick_s between clock checks."""
        while not stop.is_set():
            now = self._clock()
            for account, schedule in list(self._schedules.items()):
                if schedule.next_at > now or stop.is_set():
                    continue
                try:
                    async with schedule.lock:
                        await self._poll(account, schedule)
                except Exception:
                    log.exception("mention poll of %s failed", account)
                    schedule.next_at = self._clock() + self._backoff(schedule)
            nexts = [s.next_at for s in self._schedules.values()]
            delay = min(nexts, default=now + tick_s) - self._clock()
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(
                    waiters,
                    timeout=min(max(delay, 0.0), tick_s),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def recent(
        self,
        account: str | None,
        *,
        after_id: str = "",
        before_id: str = "",
        limit: int = 50,
    ) -> Sequence[Mention]:
        """Stored mentions, newest first, with after_id < post id < before_id (empty: no bound).

        For paging newest first, pass the last post id of the previous page as before_id.
        """
        return await self._store.list_mentions(
            account=account, after_id=after_id, before_id=before_id, limit=limit, newest_first=True
        )

    async def subscribe(
        self, account: str | None, after_id: str | None
    ) -> AsyncGenerator[Mention, None]:
        """Stored mentions newer than after_id (oldest first), then live ones, each once.

        account None means every account; after_id None means live mentions only. Raises
        MentionsLagged when the subscriber fell behind (see the class docstring).
        """
        subscriber = _Subscriber(account, asyncio.Queue(self._queue_size))
        self._subscribers.add(subscriber)
        try:
            replayed: set[tuple[str, str]] = set()
            if after_id is not None:
                async for mention in self._replay(account, after_id):
                    replayed.add((mention.account, mention.post.id))
                    yield mention
            while True:
                if subscriber.queue.empty():
                    replayed.clear()
                    if subscriber.lagged:
                        raise MentionsLagged(
                            f"mention subscriber fell {self._queue_size} mentions behind"
                        )
                    if subscriber.closed:
                        return
                item = await subscriber.queue.get()
                if item is None:
                    return
                if (item.account, item.post.id) not in replayed:
                    yield item
        finally:
            self._subscribers.discard(subscriber)

    def close_subscribers(self) -> None:
        """End every subscription (the iterators stop after what they hold); for draining."""
        for subscriber in list(self._subscribers):
            subscriber.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)
        self._subscribers.clear()

    async def _replay(self, account: str | None, after_id: str) -> AsyncIterator[Mention]:
        after = after_id
        while page := await self._store.list_mentions(
            account=account, after_id=after, limit=REPLAY_PAGE
        ):
            for mention in page:
                yield mention
            if len(page) < REPLAY_PAGE:
                return
            after = page[-1].post.id

    async def _poll(self, account: str, schedule: _Schedule) -> list[Mention]:
        plan = await self._planner.plan(account, MENTIONS)
        if not plan.go:
            schedule.next_at = plan.at
            return []
        if not schedule.cursor_loaded:
            schedule.cursor = await self._store.get_mention_cursor(account)
            schedule.cursor_loaded = True
        try:
            posts, rate = await self._network.mentions(
                self._account_ref(account), since_id=schedule.cursor, limit=self._page_limit
            )
        except RateLimited as error:
            await self._planner.record(account, error.rate)
            schedule.failures += 1
            schedule.next_at = reset_of(error.rate, self._clock())
            log.info("mentions of %s rate limited until %s", account, schedule.next_at)
            return []
        except NetworkError as error:
            await self._planner.record(account, error.rate)
            schedule.failures += 1
            schedule.next_at = self._clock() + self._backoff(schedule)
            log.warning("mentions of %s failed (%s): retry at %s", account, error, schedule.next_at)
            return []
        await self._planner.record(account, rate)
        schedule.failures = 0
        floor = mention_key(schedule.cursor) if schedule.cursor else ""
        fresh = sorted(
            (post for post in posts if mention_key(post.id) > floor),
            key=lambda post: mention_key(post.id),
        )
        skipped: list[PostRecord] = []
        if schedule.cursor is None:  # first poll: only the newest `backlog` of the backlog
            cut = max(len(fresh) - self._backlog, 0)
            skipped, fresh = fresh[:cut], fresh[cut:]
        depths = {post.id: await self._depth(account, post) for post in fresh}
        now = self._clock()
        added = await self._store.add_mentions(account, fresh, now, keep=self._keep, depths=depths)
        if fresh or skipped:
            newest = (fresh or skipped)[-1].id
            await self._store.put_mention_cursor(account, newest)
            schedule.cursor = newest
        # A full page means more may be waiting: come back as soon as the planner allows.
        schedule.next_at = now if len(posts) >= self._page_limit else now + self._interval_s
        self._publish(added)
        return added

    async def _depth(self, account: str, post: PostRecord) -> int:
        """The post's reply depth in its conversation (see the class docstring)."""
        hops, current = 0, post
        while True:
            known = self._depths.get(current.id)
            if known is not None:
                depth = min(known + hops, self._depth_cap)
                break
            parent = current.in_reply_to_id
            if not parent or current.id == current.conversation_id:
                depth = hops
                break
            if parent == current.conversation_id or hops + 1 >= self._depth_cap:
                depth = min(hops + 1, self._depth_cap)
                break
            try:
                result = await self._network.get_post(self._account_ref(account), parent)
            except NetworkError as error:
                await self._planner.record(account, error.rate)
                depth = hops + 1
                break
            await self._planner.record(account, result.rate)
            if result.post is None:
                depth = hops + 1
                break
            hops, current = hops + 1, result.post
        if len(self._depths) >= _DEPTH_MEMO:
            self._depths.clear()
        self._depths[post.id] = depth
        return depth

    def _backoff(self, schedule: _Schedule) -> float:
        return min(self._interval_s * 2.0 ** max(schedule.failures - 1, 0), self._max_backoff_s)

    def _publish(self, mentions: Sequence[Mention]) -> None:
        for mention in mentions:
            for subscriber in list(self._subscribers):
                if subscriber.account not in (None, mention.account):
                    continue
                try:
                    subscriber.queue.put_nowait(mention)
                except asyncio.QueueFull:
                    log.warning("mention subscriber fell behind; closing it")
                    subscriber.lagged = True
                    self._subscribers.discard(subscriber)
