"""Account-shaped RPC methods: account info in every encoding and SPL Token queries."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from solders.token.state import Mint

from puppet_chain.localnet.solana_rpc.bank import Bank
from puppet_chain.localnet.solana_rpc.encoding import (
    MINT_LEN,
    RENT_EXEMPT_EPOCH,
    TOKEN_PROGRAMS,
    RpcError,
    b58encode,
    param,
    pubkey_of,
)
from puppet_chain.localnet.solana_rpc.views import ui_token_amount


def account_json(
    bank: Bank, account: Account | None, encoding: str, data_slice: dict[str, int] | None
) -> Any:
    if account is None:
        return None
    data = bytes(account.data)
    encoded: Any
    parsed = encoding == "jsonParsed" and parsed_json(bank, account)
    if parsed:
        encoded = parsed
    else:
        if data_slice:
            offset = int(data_slice.get("offset", 0))
            data = data[offset : offset + int(data_slice.get("length", len(data)))]
        if encoding == "base58":
            encoded = [b58encode(data), "base58"]
        elif encoding in ("base64", "jsonParsed"):
            encoded = [base64.b64encode(data).decode(), "base64"]
        else:
            raise RpcError(-32602, f"Invalid params: unsupported encoding {encoding} here")
    return {
        "lamports": account.lamports,
        "owner": str(account.owner),
        "data": encoded,
        "executable": account.executable,
        "rentEpoch": RENT_EXEMPT_EPOCH,
        "space": len(account.data),
    }


def parsed_json(bank: Bank, account: Account) -> dict[str, Any] | None:
    program = TOKEN_PROGRAMS.get(account.owner)
    if program is None:
        return None
    token = bank.token_account(account)
    info: dict[str, Any]
    if token is not None:
        info = {
            "isNative": token.is_native is not None,
            "mint": str(token.mint),
            "owner": str(token.owner),
            "state": "frozen" if int(token.state) == 2 else "initialized",
            "tokenAmount": ui_token_amount(token.amount, bank.mint_decimals(token.mint)),
        }
        kind = "account"
    elif len(account.data) >= MINT_LEN:
        mint = Mint.from_bytes(bytes(account.data[:MINT_LEN]))
        info = {
            "decimals": mint.decimals,
            "freezeAuthority": str(mint.freeze_authority) if mint.freeze_authority else None,
            "isInitialized": mint.is_initialized,
            "mintAuthority": str(mint.mint_authority) if mint.mint_authority else None,
            "supply": str(mint.supply),
        }
        kind = "mint"
    else:
        return None
    return {
        "program": program,
        "parsed": {"info": info, "type": kind},
        "space": len(account.data),
    }


class AccountMethods:
    """getAccountInfo, getMultipleAccounts and the SPL Token account queries."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank

    def table(self) -> dict[str, Callable[[list[Any]], Any]]:
        return {
            "getAccountInfo": self._get_account_info,
            "getMultipleAccounts": self._get_multiple_accounts,
            "getTokenAccountBalance": self._get_token_account_balance,
            "getTokenAccountsByOwner": self._get_token_accounts_by_owner,
            "getTokenSupply": self._get_token_supply,
        }

    def _get_account_info(self, params: list[Any]) -> Any:
        key = pubkey_of(param(params, 0))
        config = param(params, 1, {})
        with self._bank.lock:
            account = self._bank.svm.get_account(key)
            return self._bank.context(
                account_json(
                    self._bank, account, config.get("encoding", "base64"), config.get("dataSlice")
                )
            )

    def _get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = [pubkey_of(key) for key in param(params, 0, [])]
        config = param(params, 1, {})
        encoding = config.get("encoding", "base64")
        with self._bank.lock:
            return self._bank.context(
                [
                    account_json(
                        self._bank,
                        self._bank.svm.get_account(key),
                        encoding,
                        config.get("dataSlice"),
                    )
                    for key in keys
                ]
            )

    def _get_token_account_balance(self, params: list[Any]) -> Any:
        key = pubkey_of(param(params, 0))
        with self._bank.lock:
            token = self._bank.token_account(self._bank.svm.get_account(key))
            if token is None:
                raise RpcError(-32602, "Invalid param: could not find account")
            return self._bank.context(
                ui_token_amount(token.amount, self._bank.mint_decimals(token.mint))
            )

    def _get_token_supply(self, params: list[Any]) -> Any:
        key = pubkey_of(param(params, 0))
        with self._bank.lock:
            account = self._bank.svm.get_account(key)
            if account is None or account.owner not in TOKEN_PROGRAMS:
                raise RpcError(-32602, "Invalid param: not a Token mint")
            mint = Mint.from_bytes(bytes(account.data[:MINT_LEN]))
            return self._bank.context(ui_token_amount(mint.supply, mint.decimals))

    def _get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = pubkey_of(param(params, 0))
        filter_ = param(params, 1, {})
        config = param(params, 2, {})
        encoding = config.get("encoding", "base64")
        with self._bank.lock:
            mint: Pubkey | None = None
            if "mint" in filter_:
                mint = pubkey_of(filter_["mint"])
                mint_account = self._bank.svm.get_account(mint)
                if mint_account is None or mint_account.owner not in TOKEN_PROGRAMS:
                    raise RpcError(-32602, "Invalid param: not a Token mint")
                program = mint_account.owner
            elif "programId" in filter_:
                program = pubkey_of(filter_["programId"])
                if program not in TOKEN_PROGRAMS:
                    raise RpcError(-32602, "Invalid param: unrecognized Token program id")
            else:
                raise RpcError(-32602, "Invalid params: expected a mint or programId filter")
            found: list[dict[str, Any]] = []
            for key, account in self._bank.svm.get_program_accounts(program):
                token = self._bank.token_account(account)
                if token is None or token.owner != owner or (mint and token.mint != mint):
                    continue
                found.append(
                    {
                        "pubkey": str(key),
                        "account": account_json(
                            self._bank, account, encoding, config.get("dataSlice")
                        ),
                    }
                )
            found.sort(key=lambda item: item["pubkey"])
            return self._bank.context(found)
