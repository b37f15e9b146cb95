"""The JSON shapes the RPC answers with: errors, simulations, transactions, token amounts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import TransactionMetadata
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
)

from puppet_chain.localnet.solana_rpc.encoding import b58encode

_FIELDLESS_MESSAGES = [
    (TransactionErrorFieldless.AlreadyProcessed, "This transaction has already been processed"),
    (TransactionErrorFieldless.BlockhashNotFound, "Blockhash not found"),
    (
        TransactionErrorFieldless.AccountNotFound,
        "Attempt to debit an account but found no record of a prior credit.",
    ),
    (TransactionErrorFieldless.InsufficientFundsForFee, "Insufficient funds for fee"),
]


@dataclass(frozen=True, slots=True)
class TokenBalance:
    """One token account's balance before or after a transaction."""

    index: int
    mint: Pubkey
    owner: Pubkey
    program: Pubkey
    amount: int
    decimals: int


def err_json(err: TransactionErrorType | None) -> Any:
    """A TransactionError in RPC JSON form, e.g. {"InstructionError":[0,{"Custom":1}]}."""
    if err is None:
        return None
    return json.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


def _ui_amount_string(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    digits = f"{amount:0{decimals + 1}d}"
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": _ui_amount_string(amount, decimals),
    }


def preflight_message(err: TransactionErrorType) -> str:
    if isinstance(err, TransactionErrorInstructionError):
        index, ix_err = err.index, err.err
        detail = str(ix_err)
        custom = getattr(ix_err, "code", None)
        if isinstance(custom, int):
            detail = f"custom program error: {custom:#x}"
        return f"Transaction simulation failed: Error processing Instruction {index}: {detail}"
    if isinstance(err, TransactionErrorInsufficientFundsForRent):
        return (
            "Transaction simulation failed: Transaction results in an account "
            f"({err.account_index}) with insufficient funds for rent"
        )
    for known, text in _FIELDLESS_MESSAGES:
        if err == known:
            return f"Transaction simulation failed: {text}"
    return f"Transaction simulation failed: {err}"


def simulation_json(
    err: TransactionErrorType | None,
    meta: TransactionMetadata | None,
    *,
    fee: int | None = None,
    replacement: dict[str, Any] | None = None,
    accounts: list[Any] | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        RpcSimulateTransactionResult(
            err=err,
            logs=meta.logs() if meta is not None else [],
            units_consumed=meta.compute_units_consumed() if meta is not None else 0,
            fee=fee,
        ).to_json()
    )
    result["replacementBlockhash"] = replacement
    result["accounts"] = accounts
    return result


def token_balance_json(balance: TokenBalance) -> dict[str, Any]:
    return {
        "accountIndex": balance.index,
        "mint": str(balance.mint),
        "owner": str(balance.owner),
        "programId": str(balance.program),
        "uiTokenAmount": ui_token_amount(balance.amount, balance.decimals),
    }


def transaction_json(tx: VersionedTransaction) -> dict[str, Any]:
    message = tx.message
    header = message.header
    body: dict[str, Any] = {
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "accountKeys": [str(key) for key in message.account_keys],
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [
            {
                "programIdIndex": ix.program_id_index,
                "accounts": list(ix.accounts),
                "data": b58encode(bytes(ix.data)),
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "writableIndexes": list(lookup.writable_indexes),
                "readonlyIndexes": list(lookup.readonly_indexes),
            }
            for lookup in message.address_table_lookups
        ]
    return {"signatures": [str(sig) for sig in tx.signatures], "message": body}
