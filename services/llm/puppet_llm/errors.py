"""Every error this service can return. Reasons are API: never rename one."""

from __future__ import annotations

from puppet_runtime import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    invalid_field,
)

__all__ = ["invalid_field"]


def request_id_reused(request_id: str, op: str) -> InvalidArgument:
    return InvalidArgument(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different call ({op}).",
        {"request_id": request_id, "op": op},
    )


def budget_exhausted(agent: str, budget: str, reset_time: str) -> ResourceExhausted:
    return ResourceExhausted(
        "BUDGET_EXHAUSTED",
        f"The daily {budget} budget of agents/{agent} is spent; it resets at {reset_time}.",
        {"agent": f"agents/{agent}", "budget": budget, "reset_time": reset_time},
    )


def provider_not_configured(provider: str, why: str) -> FailedPrecondition:
    return FailedPrecondition(
        "PROVIDER_NOT_CONFIGURED",
        f"Provider {provider} is not usable: {why}",
        {"provider": provider},
    )


def provider_rejected(provider: str, status: str) -> FailedPrecondition:
    return FailedPrecondition(
        "PROVIDER_REJECTED",
        f"Provider {provider} refused the request ({status}); retrying will not help.",
        {"provider": provider, "status": status},
    )


def provider_unavailable(provider: str, status: str, retry_after_s: float | None) -> Unavailable:
    metadata = {"provider": provider, "status": status}
    if retry_after_s is not None:
        metadata["retry_after_s"] = f"{retry_after_s:g}"
    return Unavailable(
        "PROVIDER_UNAVAILABLE",
        f"Provider {provider} is unavailable ({status}); retry later.",
        metadata,
    )


def near_duplicate(attempts: int) -> FailedPrecondition:
    return FailedPrecondition(
        "NEAR_DUPLICATE",
        f"All {attempts} attempts were too similar to a recent post of the persona.",
        {"attempts": str(attempts)},
    )


def text_unusable(attempts: int, last_problem: str) -> FailedPrecondition:
    return FailedPrecondition(
        "TEXT_UNUSABLE",
        f"No usable text after {attempts} attempts; last problem: {last_problem}.",
        {"attempts": str(attempts), "last_problem": last_problem},
    )


def deadline_exceeded() -> DeadlineExceeded:
    return DeadlineExceeded(
        "DEADLINE_EXCEEDED", "The caller's deadline passed before the model answered.", {}
    )
