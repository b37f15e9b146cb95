"""Rules every adapter applies the same way inside its write transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from puppet_memory.store import (
    EmbeddingMismatchError,
    Insert,
    MemoryRow,
    PersonaRow,
    RequestIdReusedError,
)


def check_request_op(request_id: str, recorded_op: str, op: str) -> None:
    """An idempotency key belongs to one kind of call."""
    if recorded_op != op:
        raise RequestIdReusedError(request_id, recorded_op)


def known_results(found: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """request_id to memory_id from recorded (request_id, op, result); each must be a create."""
    known: dict[str, str] = {}
    for request_id, op, result in found:
        check_request_op(request_id, op, "create_memory")
        known[request_id] = result
    return known


def check_embedding(persona: PersonaRow, rows: Sequence[MemoryRow]) -> tuple[str, int]:
    """The (model, dimension) of the persona's index after adding rows; refuses mixing."""
    model, dim = persona.embedding_model, persona.embedding_dimension
    if persona.memory_count == 0 and rows:
        model, dim = rows[0].embedding_model, rows[0].dimension
    for row in rows:
        if (row.embedding_model, row.dimension) != (model, dim):
            raise EmbeddingMismatchError((model, dim), (row.embedding_model, row.dimension))
    return model, dim


def plan_inserts(
    inserts: Sequence[Insert], known: Mapping[str, str], existing: Mapping[str, MemoryRow]
) -> list[tuple[MemoryRow, bool]]:
    """Each insert's row and whether it is new.

    A key recorded earlier whose memory still exists is a replay; a key repeated inside the
    batch maps to the batch's first row for it.
    """
    plan: list[tuple[MemoryRow, bool]] = []
    first_of: dict[str, MemoryRow] = {}
    for item in inserts:
        key = item.request_id
        if key and key in first_of:
            plan.append((first_of[key], False))
            continue
        prior = existing.get(known[key]) if key and key in known else None
        plan.append((prior, False) if prior is not None else (item.row, True))
        if key:
            first_of[key] = plan[-1][0]
    return plan


def post_time(
    inserts: Sequence[Insert], plan: Sequence[tuple[MemoryRow, bool]]
) -> tuple[int, int] | None:
    """(last_post_time_us, update_time_us) to set on the persona: the latest post time among the
    new rows' inserts and the latest of those rows' update times; None when no new row has one."""
    found: tuple[int, int] | None = None
    for item, (row, created) in zip(inserts, plan, strict=True):
        t = item.last_post_time_us
        if not created or t is None:
            continue
        u = row.update_time_us
        found = (t, u) if found is None else (max(found[0], t), max(found[1], u))
    return found


def new_keys(
    agent: str, inserts: Sequence[Insert], plan: Sequence[tuple[MemoryRow, bool]]
) -> list[tuple[str, str, str]]:
    """(agent, request_id, memory_id) for every new row that came with a key."""
    return [
        (agent, item.request_id, row.memory_id)
        for item, (row, created) in zip(inserts, plan, strict=True)
        if created and item.request_id
    ]
