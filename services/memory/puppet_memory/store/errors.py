"""The domain errors a MemoryStore raises (the servicer maps them to status codes)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the domain errors a store raises."""


class PersonaNotFoundError(StoreError):
    """The persona does not exist."""


class PersonaExistsError(StoreError):
    """create_persona for an id that is taken (by another request)."""


class EmbeddingMismatchError(StoreError):
    """A vector's model or dimension differs from the persona's index."""

    def __init__(self, expected: tuple[str, int], got: tuple[str, int]) -> None:
        super().__init__(f"persona index is {expected}, vector is {got}")
        self.expected = expected
        self.got = got


class RequestIdReusedError(StoreError):
    """An idempotency key already used for a different kind of call."""

    def __init__(self, request_id: str, op: str) -> None:
        super().__init__(f"request_id {request_id!r} was used for {op}")
        self.request_id = request_id
        self.op = op


class RevisionConflictError(StoreError):
    """The persona's memories changed between read and write."""


class MemoryNotFoundError(StoreError):
    """The memory does not exist (the persona does)."""


class RelationshipNotFoundError(StoreError):
    """The relationship does not exist (the persona does)."""


class BudgetExhaustedError(StoreError):
    """Core memories alone would fill the persona's budget."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"core memories fill the budget of {budget}")
        self.budget = budget


class StateTooLargeError(StoreError):
    """An update would leave the persona's state map with too many entries."""
