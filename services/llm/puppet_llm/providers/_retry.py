"""Retry policy for hosted providers: what to retry, how long to wait, all inside one deadline."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# 408/409 are transient by OpenAI's own client policy; 429 is a rate limit; 5xx a server fault.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable(status: int) -> bool:
    """Whether an HTTP status is worth another attempt (429, 408, 409 and every 5xx)."""
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: retry n waits U(0, min(max_s, base_s * 2**(n-1)))."""

    base_s: float = 0.25
    max_s: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < 0:
            raise ValueError("backoff times must not be negative")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_s, self.base_s * 2.0 ** min(retry - 1, 62))
        return self.rng.uniform(0.0, ceiling)


def retry_after_s(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, else ``Retry-After`` (seconds or an
    HTTP date). ``None`` when absent or unparseable; never negative."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value / 1000.0)
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when.timestamp() - now())
    return max(0.0, value) if math.isfinite(value) else None


class Deadline:
    """A point in monotonic time; every attempt and every wait must fit before it."""

    __slots__ = ("_clock", "_end", "timeout_s")

    def __init__(self, timeout_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._end = clock() + timeout_s

    def remaining(self) -> float:
        """Seconds left; zero or negative once it has passed."""
        return self._end - self._clock()
