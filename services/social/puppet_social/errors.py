"""Every error this service can return. Reasons are API: never rename one."""

from __future__ import annotations

from datetime import UTC, datetime

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

__all__ = ["invalid_field"]


def account_not_found(name: str) -> NotFound:
    return NotFound("ACCOUNT_NOT_FOUND", f"Account {name!r} does not exist.", {"name": name})


def post_not_found(name: str) -> NotFound:
    return NotFound("POST_NOT_FOUND", f"Post {name!r} does not exist.", {"name": name})


def outbox_item_not_found(name: str) -> NotFound:
    return NotFound(
        "OUTBOX_ITEM_NOT_FOUND", f"Outbox item {name!r} does not exist.", {"name": name}
    )


def account_already_exists(name: str) -> AlreadyExists:
    return AlreadyExists(
        "ACCOUNT_ALREADY_EXISTS",
        f"Account {name!r} (or its handle) already exists.",
        {"name": name},
    )


def request_id_reused(request_id: str) -> InvalidArgument:
    return InvalidArgument(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different action.",
        {"request_id": request_id},
    )


def tweet_too_long(weighted_length: int, part: int) -> InvalidArgument:
    return InvalidArgument(
        "TWEET_TOO_LONG",
        f"Part {part} is {weighted_length} weighted characters; at most 280 are allowed.",
        {"weighted_length": str(weighted_length), "part": str(part)},
    )


def credentials_missing(name: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CREDENTIALS_MISSING",
        f"Account {name!r} has no X credentials and no default credentials are configured.",
        {"name": name},
    )


def credentials_rejected(name: str) -> FailedPrecondition:
    return FailedPrecondition(
        "CREDENTIALS_REJECTED", f"X refused the credentials of {name!r}.", {"name": name}
    )


def not_reviewable(name: str, state: str) -> FailedPrecondition:
    return FailedPrecondition(
        "NOT_REVIEWABLE",
        f"Outbox item {name!r} is {state}, not waiting for review.",
        {"name": name, "state": state},
    )


def network_unavailable(name: str) -> Unavailable:
    return Unavailable(
        "NETWORK_UNAVAILABLE", "The network did not answer; retry later.", {"name": name}
    )


def not_own_post(name: str, author: str) -> FailedPrecondition:
    return FailedPrecondition(
        "NOT_OWN_POST",
        f"Post {name!r} was written by @{author}, not by the account in its name.",
        {"name": name, "author_handle": author},
    )


def read_rate_limited(name: str, retry_at: float) -> ResourceExhausted:
    when = datetime.fromtimestamp(retry_at, UTC).isoformat(timespec="seconds")
    when = when.replace("+00:00", "Z")
    return ResourceExhausted(
        "READ_RATE_LIMITED",
        f"The network's read limit is spent; retry at {when}.",
        {"name": name, "retry_time": when},
    )


def unsupported(what: str) -> FailedPrecondition:
    return FailedPrecondition("UNSUPPORTED", f"{what} is not supported yet.", {"what": what})


def mentions_lagged(name: str) -> Aborted:
    return Aborted(
        "MENTIONS_LAGGED",
        "The stream fell too far behind the poller and was closed; reconnect with "
        "after_post_id set to the last post id handled.",
        {"name": name},
    )
