"""Every error this service can return. Reasons are API: never rename one."""

from __future__ import annotations

from datetime import UTC, datetime

from puppet_runtime import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    invalid_field,
)

__all__ = ["invalid_field"]


def agent_not_found(agent_id: str) -> NotFound:
    return NotFound("AGENT_NOT_FOUND", f"Agent {agent_id!r} not found.", {"agent_id": agent_id})


def persona_invalid(violations: list[tuple[str, str]]) -> InvalidArgument:
    fields = [FieldViolation(path or "persona", message) for path, message in violations]
    summary = "; ".join(f"{f.field}: {f.description}" for f in fields[:10])
    return InvalidArgument(
        "PERSONA_INVALID",
        f"Valid agent configuration is required: {summary}",
        {"field": fields[0].field if fields else "persona"},
        violations=fields,
    )


def request_id_reused(request_id: str, op: str) -> InvalidArgument:
    return InvalidArgument(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different call.",
        {"request_id": request_id, "op": op},
    )


def post_too_soon(last_post_ms: int, retry: datetime) -> ResourceExhausted:
    return ResourceExhausted(
        "POST_TOO_SOON",
        "Too soon since last post",
        {
            "last_post_time": str(last_post_ms),
            "retry_time": retry.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
    )


def post_refused(llm_reason: str, message: str) -> FailedPrecondition:
    return FailedPrecondition(
        "POST_REFUSED", f"The llm refused the text: {message}", {"llm_reason": llm_reason}
    )


def llm_budget_exhausted(budget: str) -> ResourceExhausted:
    return ResourceExhausted(
        "LLM_BUDGET_EXHAUSTED", "The persona's llm budget is spent.", {"budget": budget}
    )


def unavailable(service: str) -> Unavailable:
    return Unavailable(
        f"{service.upper()}_UNAVAILABLE", f"The {service} service is unavailable; retry later."
    )


def chain_refused(op: str, chain_reason: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CHAIN_REFUSED",
        f"The chain service refused {op}: {chain_reason}.",
        {"chain_reason": chain_reason},
    )


def admin_token_required() -> Unauthenticated:
    return Unauthenticated(
        "ADMIN_TOKEN_REQUIRED", "This call needs the admin token (authorization: Bearer ...)."
    )
