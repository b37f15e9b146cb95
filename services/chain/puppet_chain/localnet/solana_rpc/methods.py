"""Chain-shaped RPC methods: slots, blockhashes, fees, sending, simulating, history."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from solders.hash import Hash
from solders.message import from_bytes_versioned
from solders.signature import Signature
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionErrorFieldless

from puppet_chain.localnet.solana_rpc.accounts import account_json
from puppet_chain.localnet.solana_rpc.bank import Bank
from puppet_chain.localnet.solana_rpc.encoding import (
    FEATURE_SET,
    LAMPORTS_PER_SIGNATURE,
    SOLANA_CORE_VERSION,
    RpcError,
    b58encode,
    decode,
    decode_tx,
    param,
    pubkey_of,
)
from puppet_chain.localnet.solana_rpc.views import (
    err_json,
    simulation_json,
    token_balance_json,
    transaction_json,
)


class ChainMethods:
    """Slots, blockhashes, fees, airdrops, sending and simulating, and transaction history."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank

    def table(self) -> dict[str, Callable[[list[Any]], Any]]:
        bank = self._bank
        return {
            "getHealth": lambda _p: "ok",
            "getVersion": lambda _p: {
                "solana-core": SOLANA_CORE_VERSION,
                "feature-set": FEATURE_SET,
            },
            "getSlot": lambda _p: bank.slot,
            "getBlockHeight": lambda _p: bank.height,
            "getLatestBlockhash": self._get_latest_blockhash,
            "isBlockhashValid": self._is_blockhash_valid,
            "getBalance": self._get_balance,
            "getMinimumBalanceForRentExemption": self._get_min_rent,
            "getFeeForMessage": self._get_fee_for_message,
            "requestAirdrop": self._request_airdrop,
            "sendTransaction": self._send_transaction,
            "simulateTransaction": self._simulate_transaction,
            "getSignatureStatuses": self._get_signature_statuses,
            "getTransaction": self._get_transaction,
            "getEpochInfo": self._get_epoch_info,
            "getSignaturesForAddress": self._get_signatures_for_address,
            "getGenesisHash": lambda _p: str(bank.genesis),
            "getTransactionCount": lambda _p: bank.tx_count,
            "getRecentPrioritizationFees": lambda _p: [],
        }

    def _get_epoch_info(self, _params: list[Any]) -> Any:
        with self._bank.lock:
            slots_per_epoch = self._bank.svm.get_epoch_schedule().slots_per_epoch
            return {
                "absoluteSlot": self._bank.slot,
                "blockHeight": self._bank.height,
                "epoch": self._bank.slot // slots_per_epoch,
                "slotIndex": self._bank.slot % slots_per_epoch,
                "slotsInEpoch": slots_per_epoch,
                "transactionCount": self._bank.tx_count,
            }

    def _get_latest_blockhash(self, _params: list[Any]) -> Any:
        blockhash, last_valid = self._bank.latest_blockhash()
        return self._bank.context({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def _is_blockhash_valid(self, params: list[Any]) -> Any:
        try:
            blockhash = Hash.from_string(str(param(params, 0, "")))
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        with self._bank.lock:
            return self._bank.context(self._bank.blockhash_valid(blockhash))

    def _get_balance(self, params: list[Any]) -> Any:
        key = pubkey_of(param(params, 0))
        with self._bank.lock:
            return self._bank.context(self._bank.svm.get_balance(key) or 0)

    def _get_min_rent(self, params: list[Any]) -> Any:
        size = param(params, 0)
        if not isinstance(size, int) or size < 0:
            raise RpcError(-32602, "Invalid params: expected a data length")
        with self._bank.lock:
            return self._bank.svm.minimum_balance_for_rent_exemption(size)

    def _get_fee_for_message(self, params: list[Any]) -> Any:
        raw = decode(str(param(params, 0, "")), "base64")
        try:
            message = from_bytes_versioned(raw)
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        with self._bank.lock:
            if not self._bank.blockhash_valid(message.recent_blockhash):
                return self._bank.context(None)
            return self._bank.context(
                LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
            )

    def _request_airdrop(self, params: list[Any]) -> Any:
        key = pubkey_of(param(params, 0))
        lamports = param(params, 1)
        if not isinstance(lamports, int) or lamports <= 0:
            raise RpcError(-32602, "Invalid params: expected lamports")
        return str(self._bank.airdrop(key, lamports))

    def _send_transaction(self, params: list[Any]) -> Any:
        config = param(params, 1, {})
        tx = decode_tx(param(params, 0, ""), config)
        return str(self._bank.submit(tx, preflight=not config.get("skipPreflight", False)))

    def _simulate_transaction(self, params: list[Any]) -> Any:
        config = param(params, 1, {})
        tx = decode_tx(param(params, 0, ""), config)
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(-32602, "sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        fee = LAMPORTS_PER_SIGNATURE * tx.message.header.num_required_signatures
        with self._bank.lock:
            replacement = None
            if replace:
                blockhash = next(reversed(self._bank.blockhashes))
                replacement = {
                    "blockhash": str(blockhash),
                    "lastValidBlockHeight": self._bank.blockhashes[blockhash],
                }
            elif not self._bank.blockhash_valid(tx.message.recent_blockhash):
                err = TransactionErrorFieldless.BlockhashNotFound
                return self._bank.context(simulation_json(err, None))
            self._bank.svm.with_sigverify(False)
            try:
                simulated = self._bank.svm.simulate_transaction(tx)
            finally:
                self._bank.svm.with_sigverify(True)
            if isinstance(simulated, FailedTransactionMetadata):
                return self._bank.context(
                    simulation_json(
                        simulated.err(), simulated.meta(), fee=fee, replacement=replacement
                    )
                )
            accounts = None
            wanted = config.get("accounts")
            if wanted:
                post = dict(simulated.post_accounts())
                encoding = wanted.get("encoding", "base64")
                accounts = []
                for address in wanted.get("addresses", []):
                    key = pubkey_of(address)
                    account = post.get(key) or self._bank.svm.get_account(key)
                    accounts.append(account_json(self._bank, account, encoding, None))
            return self._bank.context(
                simulation_json(
                    None, simulated.meta(), fee=fee, replacement=replacement, accounts=accounts
                )
            )

    def _get_signature_statuses(self, params: list[Any]) -> Any:
        raw = param(params, 0, [])
        if not isinstance(raw, list):
            raise RpcError(-32602, "Invalid params: expected a list of signatures")
        statuses: list[Any] = []
        with self._bank.lock:
            for item in raw:
                try:
                    record = self._bank.history.get(Signature.from_string(str(item)))
                except ValueError:
                    raise RpcError(-32602, f"Invalid param: invalid signature {item}") from None
                if record is None:
                    statuses.append(None)
                    continue
                err = err_json(record.err)
                statuses.append(
                    {
                        "slot": record.slot,
                        "confirmations": None,
                        "err": err,
                        "status": {"Ok": None} if err is None else {"Err": err},
                        "confirmationStatus": "finalized",
                    }
                )
            return self._bank.context(statuses)

    def _get_signatures_for_address(self, params: list[Any]) -> Any:
        address = pubkey_of(param(params, 0))
        config = param(params, 1, {})
        limit = int(config.get("limit") or 1000)
        if not 1 <= limit <= 1000:
            raise RpcError(-32602, "Invalid limit; max 1000")
        before, until = config.get("before"), config.get("until")
        found: list[dict[str, Any]] = []
        with self._bank.lock:
            started = before is None
            for signature, record in reversed(self._bank.history.items()):
                text = str(signature)
                if not started:
                    started = text == before
                    continue
                if text == until or len(found) >= limit:
                    break
                if address not in record.tx.message.account_keys:
                    continue
                found.append(
                    {
                        "signature": text,
                        "slot": record.slot,
                        "err": err_json(record.err),
                        "memo": None,
                        "blockTime": record.block_time,
                        "confirmationStatus": "finalized",
                    }
                )
        return found

    def _get_transaction(self, params: list[Any]) -> Any:
        try:
            signature = Signature.from_string(str(param(params, 0, "")))
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        config = param(params, 1, {})
        if isinstance(config, str):
            config = {"encoding": config}
        encoding = config.get("encoding") or "json"
        with self._bank.lock:
            record = self._bank.history.get(signature)
        if record is None:
            return None
        version = record.tx.version()
        legacy = not isinstance(version, int)
        if not legacy and config.get("maxSupportedTransactionVersion") is None:
            raise RpcError(
                -32015,
                f"Transaction version ({version}) is not supported by the requesting client. "
                "Please try the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        if encoding == "json":
            transaction: Any = transaction_json(record.tx)
        elif encoding in ("base64", "base58"):
            raw = bytes(record.tx)
            text = base64.b64encode(raw).decode() if encoding == "base64" else b58encode(raw)
            transaction = [text, encoding]
        else:
            raise RpcError(-32602, f"Invalid params: unsupported encoding {encoding} here")
        err = err_json(record.err)
        meta = {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": record.fee,
            "preBalances": record.pre_balances,
            "postBalances": record.post_balances,
            "innerInstructions": [],
            "logMessages": record.logs,
            "preTokenBalances": [token_balance_json(b) for b in record.pre_tokens],
            "postTokenBalances": [token_balance_json(b) for b in record.post_tokens],
            "rewards": [],
            "loadedAddresses": {"writable": [], "readonly": []},
            "computeUnitsConsumed": record.units,
        }
        return {
            "slot": record.slot,
            "blockTime": record.block_time,
            "transaction": transaction,
            "meta": meta,
            "version": "legacy" if legacy else version,
        }
