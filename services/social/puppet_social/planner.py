"""The rate-limit planner: may this account call this endpoint now, or from when?"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from puppet_social.network import RateInfo
from puppet_social.store import POSTING, Action, OutboxStore, RateWindow

POSTS = "POST /2/tweets"
DELETE = "DELETE /2/tweets/:id"
LIKES = "POST /2/users/:id/likes"
RETWEETS = "POST /2/users/:id/retweets"
DAY_S = 24 * 3600.0

ENDPOINTS: Mapping[Action, str] = {
    Action.POST: POSTS,
    Action.REPLY: POSTS,
    Action.QUOTE: POSTS,
    Action.DELETE: DELETE,
    Action.LIKE: LIKES,
    Action.REPOST: RETWEETS,
    # A thread plans each part as its own post; the thread item itself takes no slot.
    Action.THREAD: POSTS,
}


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """What the planner allows an account of one access tier.

    posts_per_24h caps posts, replies and quotes in any 24 hours (None: no own cap);
    sends_per_second paces an endpoint whose rate headers were never seen, so nothing bursts.
    """

    posts_per_24h: int | None
    sends_per_second: int = 1


DEFAULT_POLICIES: Mapping[str, TierPolicy] = {
    "free": TierPolicy(posts_per_24h=17),
    "basic": TierPolicy(posts_per_24h=100),
    "pro": TierPolicy(posts_per_24h=10_000),
    "unlimited": TierPolicy(posts_per_24h=None, sends_per_second=10),
}


@dataclass(frozen=True, slots=True)
class Plan:
    """go: call now (a pacing slot is taken); else retry at `at` (Unix seconds)."""

    go: bool
    at: float


class RatePlanner:
    """Answers from the last headers seen, the tier's 24-hour post cap and start-up pacing."""

    def __init__(
        self,
        store: OutboxStore,
        clock: Callable[[], float],
        tiers: Mapping[str, TierPolicy] = DEFAULT_POLICIES,
        *,
        default_tier: str = "free",
    ) -> None:
        self._store = store
        self._clock = clock
        self._tiers = dict(tiers)
        self._default_tier = default_tier
        self._account_tiers: dict[str, str] = {}
        self._recent: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def set_tier(self, account: str, tier: str) -> None:
        if tier not in self._tiers:
            raise ValueError(f"unknown tier {tier!r}; known: {sorted(self._tiers)}")
        self._account_tiers[account] = tier

    def _policy(self, account: str) -> TierPolicy:
        return self._tiers[self._account_tiers.get(account, self._default_tier)]

    async def plan(self, account: str, endpoint: str) -> Plan:
        now = self._clock()
        policy = self._policy(account)
        window = await self._store.get_window(account, endpoint)
        later = [_window_wait(window, now)]
        if endpoint == POSTS and policy.posts_per_24h is not None:
            sent = await self._store.count_sent(account, POSTING, now - DAY_S)
            if sent >= policy.posts_per_24h:
                later.append(now + DAY_S / policy.posts_per_24h)
        if window is None:
            later.append(self._pacing_wait(account, endpoint, policy, now))
        at = max(t for t in later if t is not None) if any(t is not None for t in later) else now
        if at > now:
            return Plan(False, at)
        self._recent[account, endpoint].append(now)
        return Plan(True, now)

    def _pacing_wait(self, account: str, endpoint: str, policy: TierPolicy, now: float) -> float:
        recent = self._recent[account, endpoint]
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) < policy.sends_per_second:
            return now
        return recent[0] + 1.0

    async def record(self, account: str, rate: RateInfo | None) -> None:
        """Remember the headroom a call reported (after every call, refused ones included)."""
        if rate is None or (rate.limit is None and rate.day_limit is None):
            return
        await self._store.put_window(
            RateWindow(
                account=account,
                endpoint=rate.endpoint,
                limit=rate.limit,
                remaining=rate.remaining,
                reset_at=rate.reset_at,
                day_limit=rate.day_limit,
                day_remaining=rate.day_remaining,
                day_reset_at=rate.day_reset_at,
                updated_at=self._clock(),
            )
        )


def reset_of(rate: RateInfo | None, now: float) -> float:
    """When a RateLimited call may be retried: the day reset if the day cap is used up."""
    if rate is None:
        return now + 60.0
    if rate.day_remaining is not None and rate.day_remaining <= 0 and rate.day_reset_at:
        return rate.day_reset_at
    return rate.reset_at if rate.reset_at is not None else now + 60.0


def _window_wait(window: RateWindow | None, now: float) -> float | None:
    if window is None:
        return None
    waits = [now]
    if window.remaining is not None and window.remaining <= 0 and window.reset_at is not None:
        waits.append(window.reset_at)
    if (
        window.day_remaining is not None
        and window.day_remaining <= 0
        and window.day_reset_at is not None
    ):
        waits.append(window.day_reset_at)
    return max(waits)
