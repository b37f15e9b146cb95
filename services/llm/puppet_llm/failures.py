"""Domain failures, raised below the servicer and translated to API errors by it."""

from __future__ import annotations


class BudgetExhaustedError(Exception):
    """The persona's daily budget is spent."""

    def __init__(self, agent: str, budget: str, reset_time: str) -> None:
        super().__init__(agent, budget, reset_time)
        self.agent, self.budget, self.reset_time = agent, budget, reset_time


class NotConfiguredError(Exception):
    """The provider cannot be used here (no key, model not installed, fake not enabled)."""

    def __init__(self, provider: str, why: str) -> None:
        super().__init__(provider, why)
        self.provider, self.why = provider, why


class NearDuplicateError(Exception):
    """Every attempt repeated a recent post."""

    def __init__(self, attempts: int) -> None:
        super().__init__(attempts)
        self.attempts = attempts


class UnusableError(Exception):
    """No attempt produced a usable text."""

    def __init__(self, attempts: int, problem: str) -> None:
        super().__init__(attempts, problem)
        self.attempts, self.problem = attempts, problem


class RequestIdReusedError(Exception):
    """A request_id came back with a different call."""

    def __init__(self, request_id: str, op: str) -> None:
        super().__init__(request_id, op)
        self.request_id, self.op = request_id, op


class DeadlineError(Exception):
    """The caller's deadline left no time for another model call."""
