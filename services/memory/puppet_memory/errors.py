"""Every error this service can return. Reasons are API: never rename one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from puppet_runtime import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    invalid_field,
)

from puppet_memory.domain_base import EmbedderError
from puppet_memory.store import (
    BudgetExhaustedError,
    EmbeddingMismatchError,
    MemoryNotFoundError,
    PersonaExistsError,
    PersonaNotFoundError,
    RelationshipNotFoundError,
    RequestIdReusedError,
    RevisionConflictError,
    StateTooLargeError,
)

__all__ = ["invalid_field"]


def persona_not_found(name: str) -> NotFound:
    return NotFound("PERSONA_NOT_FOUND", f"Persona {name!r} does not exist.", {"name": name})


def memory_not_found(name: str) -> NotFound:
    return NotFound("MEMORY_NOT_FOUND", f"Memory {name!r} does not exist.", {"name": name})


def relationship_not_found(name: str) -> NotFound:
    return NotFound(
        "RELATIONSHIP_NOT_FOUND", f"Relationship {name!r} does not exist.", {"name": name}
    )


def persona_already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(
        "PERSONA_ALREADY_EXISTS", f"Persona {name!r} already exists.", {"name": name}
    )


def embedding_mismatch(expected: tuple[str, int], got: tuple[str, int]) -> FailedPrecondition:
    return FailedPrecondition(
        "EMBEDDING_MISMATCH",
        f"The persona's vectors are {expected[0]!r} ({expected[1]}-d) but this one is "
        f"{got[0]!r} ({got[1]}-d); mixing is refused. Use ReembedMemories to migrate.",
        {
            "expected_model": expected[0],
            "expected_dimension": str(expected[1]),
            "got_model": got[0],
            "got_dimension": str(got[1]),
        },
    )


def budget_exhausted(name: str, budget: int) -> ResourceExhausted:
    return ResourceExhausted(
        "MEMORY_BUDGET_EXHAUSTED",
        f"Core memories of {name!r} fill its budget of {budget}; raise memory_budget.",
        {"name": name, "budget": str(budget)},
    )


def request_id_reused(request_id: str, op: str) -> InvalidArgument:
    return InvalidArgument(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different call ({op}).",
        {"request_id": request_id, "op": op},
    )


def concurrent_modification(name: str) -> Aborted:
    return Aborted(
        "CONCURRENT_MODIFICATION",
        f"Memories of {name!r} changed during the operation; retry.",
        {"name": name},
    )


def embedder_unavailable(name: str) -> Unavailable:
    return Unavailable("EMBEDDER_UNAVAILABLE", "The embedder failed; retry later.", {"name": name})


def embedder_rejected(name: str) -> FailedPrecondition:
    return FailedPrecondition(
        "EMBEDDER_REJECTED",
        "The embedding provider refused the service's configuration (key, model or dimension).",
        {"name": name},
    )


@contextmanager
def translated(name: str) -> Iterator[None]:
    """Domain errors to this service's errors; name is the resource the call is about."""
    try:
        yield
    except PersonaNotFoundError as err:
        raise persona_not_found(f"agents/{err.args[0]}") from None
    except PersonaExistsError:
        raise persona_already_exists(name) from None
    except MemoryNotFoundError:
        raise memory_not_found(name) from None
    except RelationshipNotFoundError:
        raise relationship_not_found(name) from None
    except EmbeddingMismatchError as err:
        raise embedding_mismatch(err.expected, err.got) from None
    except BudgetExhaustedError as err:
        raise budget_exhausted(name, err.budget) from None
    except RequestIdReusedError as err:
        raise request_id_reused(err.request_id, err.op) from None
    except RevisionConflictError:
        raise concurrent_modification(name) from None
    except StateTooLargeError as err:
        raise invalid_field("persona.state", f"must have at most {err.args[0]} entries") from None
    except EmbedderError as err:
        if err.rejected:
            raise embedder_rejected(name) from None
        raise embedder_unavailable(name) from None
