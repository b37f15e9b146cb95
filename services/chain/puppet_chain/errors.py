"""Every error this service can return. Reasons are API: never rename one."""

from __future__ import annotations

from puppet_runtime import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Unavailable,
    invalid_field,
)

__all__ = ["invalid_field"]


def secret_invalid() -> InvalidArgument:
    # Never quotes the secret: the message names the field and the accepted forms only.
    return invalid_field(
        "secret",
        "is not a 64-byte keypair or 32-byte seed in base58, JSON-array or hex form",
        reason="SECRET_INVALID",
    )


def request_id_reused(request_id: str) -> InvalidArgument:
    return InvalidArgument(
        "REQUEST_ID_REUSED",
        f"request_id {request_id!r} was already used for a different call.",
        {"request_id": request_id},
    )


def wallet_not_found(name: str) -> NotFound:
    return NotFound("WALLET_NOT_FOUND", f"Wallet {name!r} does not exist.", {"name": name})


def action_not_found(name: str) -> NotFound:
    return NotFound("ACTION_NOT_FOUND", f"Action {name!r} does not exist.", {"name": name})


def receipt_not_found(name: str) -> NotFound:
    return NotFound("RECEIPT_NOT_FOUND", f"Receipt {name!r} does not exist.", {"name": name})


def wallet_already_exists(wallet: str) -> AlreadyExists:
    return AlreadyExists(
        "WALLET_ALREADY_EXISTS",
        f"Wallet {wallet!r} (or its key) is already held.",
        {"wallet": wallet},
    )


def not_pending_approval(name: str, state: str) -> FailedPrecondition:
    return FailedPrecondition(
        "NOT_PENDING_APPROVAL",
        f"Action {name!r} is {state}, not waiting for approval.",
        {"name": name, "state": state},
    )


def no_route(input_mint: str, output_mint: str) -> FailedPrecondition:
    return FailedPrecondition(
        "NO_ROUTE",
        f"No swap route from {input_mint} to {output_mint} for this amount.",
        {"input_mint": input_mint, "output_mint": output_mint},
    )


def airdrop_unavailable(cluster: str) -> FailedPrecondition:
    return FailedPrecondition(
        "AIRDROP_UNAVAILABLE", f"Airdrops are not available on {cluster}.", {"cluster": cluster}
    )


def rpc_unavailable(detail: str) -> Unavailable:
    return Unavailable(
        "RPC_UNAVAILABLE", f"The Solana RPC failed or timed out: {detail}", {"detail": detail}
    )


def jupiter_unavailable(detail: str) -> Unavailable:
    return Unavailable(
        "JUPITER_UNAVAILABLE", f"Jupiter failed or timed out: {detail}", {"detail": detail}
    )


def price_unavailable(detail: str) -> Unavailable:
    return Unavailable("PRICE_UNAVAILABLE", f"No price could be read: {detail}", {"detail": detail})


def admin_token_required() -> Unauthenticated:
    return Unauthenticated(
        "ADMIN_TOKEN_REQUIRED",
        "This call needs the admin token in 'authorization: Bearer <token>' metadata.",
    )
