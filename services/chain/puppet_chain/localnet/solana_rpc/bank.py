"""The LiteSVM bank behind LocalSolana: slots, blockhashes, submission and history."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint, TokenAccount
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
)

from puppet_chain.localnet.solana_rpc.encoding import (
    FAUCET_LAMPORTS,
    LAMPORTS_PER_SIGNATURE,
    MAX_HISTORY,
    MINT_LEN,
    SOLANA_CORE_VERSION,
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAMS,
    RpcError,
)
from puppet_chain.localnet.solana_rpc.views import TokenBalance, preflight_message, simulation_json


@dataclass(frozen=True, slots=True)
class Record:
    """One processed transaction, as `getTransaction` and `getSignatureStatuses` report it."""

    tx: VersionedTransaction
    slot: int
    block_time: int
    err: TransactionErrorType | None
    fee: int
    logs: list[str]
    units: int
    pre_balances: list[int]
    post_balances: list[int]
    pre_tokens: list[TokenBalance]
    post_tokens: list[TokenBalance]


class Bank:
    """LiteSVM plus what a node adds around it: slots, blockhashes, fees and history.

    Callers hold `lock` around anything that reads or writes the bank's state.
    """

    def __init__(self, *, blockhash_valid_blocks: int) -> None:
        self.lock = threading.Lock()
        self.svm = LiteSVM().with_blockhash_check(False)
        self.faucet = Keypair()
        self.svm.set_account(
            self.faucet.pubkey(),
            Account(FAUCET_LAMPORTS, b"", Pubkey.from_string("11111111111111111111111111111111")),
        )
        self.slot = self.svm.get_clock().slot
        self.height = self.slot
        self.genesis = self.svm.latest_blockhash()
        self.tx_count = 0
        self.valid_blocks = blockhash_valid_blocks
        self.blockhashes: collections.OrderedDict[Hash, int] = collections.OrderedDict()
        self.blockhashes[self.svm.latest_blockhash()] = self.height + blockhash_valid_blocks
        self.history: collections.OrderedDict[Signature, Record] = collections.OrderedDict()
        self._decimals: dict[Pubkey, int] = {}

    def latest_blockhash(self) -> tuple[Hash, int]:
        """The latest blockhash and its last valid block height."""
        with self.lock:
            blockhash = next(reversed(self.blockhashes))
            return blockhash, self.blockhashes[blockhash]

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Fund `pubkey` with a real transfer from the faucet (recorded like any transaction)."""
        ix = transfer(
            TransferParams(from_pubkey=self.faucet.pubkey(), to_pubkey=pubkey, lamports=lamports)
        )
        return self.run_internal([ix], [self.faucet])

    def run_internal(self, ixs: list[Instruction], signers: list[Keypair]) -> Signature:
        blockhash, _ = self.latest_blockhash()
        message = MessageV0.try_compile(signers[0].pubkey(), ixs, [], blockhash)
        return self.submit(VersionedTransaction(message, signers), preflight=True)

    def mint_decimals(self, mint: Pubkey) -> int:
        decimals = self._decimals.get(mint)
        if decimals is None:
            account = self.svm.get_account(mint)
            if account is None or account.owner not in TOKEN_PROGRAMS:
                raise RpcError(-32602, "Invalid param: not a Token mint")
            decimals = Mint.from_bytes(bytes(account.data[:MINT_LEN])).decimals
            self._decimals[mint] = decimals
        return decimals

    def token_account(self, account: Account | None) -> TokenAccount | None:
        if account is None or account.owner not in TOKEN_PROGRAMS:
            return None
        data = bytes(account.data)
        is_account = len(data) == TOKEN_ACCOUNT_LEN or (
            len(data) > TOKEN_ACCOUNT_LEN and data[TOKEN_ACCOUNT_LEN] == 2
        )
        if not is_account:
            return None
        return TokenAccount.from_bytes(data[:TOKEN_ACCOUNT_LEN])

    def snapshot(self, keys: Sequence[Pubkey]) -> tuple[list[int], list[TokenBalance]]:
        lamports: list[int] = []
        tokens: list[TokenBalance] = []
        for index, key in enumerate(keys):
            account = self.svm.get_account(key)
            lamports.append(account.lamports if account is not None else 0)
            token = self.token_account(account)
            if token is not None and account is not None:
                tokens.append(
                    TokenBalance(
                        index,
                        token.mint,
                        token.owner,
                        account.owner,
                        token.amount,
                        self.mint_decimals(token.mint),
                    )
                )
        return lamports, tokens

    def blockhash_valid(self, blockhash: Hash) -> bool:
        last_valid = self.blockhashes.get(blockhash)
        return last_valid is not None and self.height <= last_valid

    def advance(self) -> None:
        self.tx_count += 1
        self.slot += 1
        self.height += 1
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()
        self.blockhashes[self.svm.latest_blockhash()] = self.height + self.valid_blocks
        while len(self.blockhashes) > self.valid_blocks + 1:
            self.blockhashes.popitem(last=False)

    def submit(self, tx: VersionedTransaction, *, preflight: bool) -> Signature:
        if not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        signature = tx.signatures[0]
        message = tx.message
        with self.lock:
            fee = LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
            if signature in self.history:
                if preflight:
                    already = TransactionErrorFieldless.AlreadyProcessed
                    raise RpcError(
                        -32002, preflight_message(already), simulation_json(already, None)
                    )
                return signature
            if not self.blockhash_valid(message.recent_blockhash):
                if preflight:
                    missing = TransactionErrorFieldless.BlockhashNotFound
                    raise RpcError(
                        -32002, preflight_message(missing), simulation_json(missing, None)
                    )
                return signature  # a real node drops it silently
            if preflight:
                simulated = self.svm.simulate_transaction(tx)
                if isinstance(simulated, FailedTransactionMetadata):
                    raise RpcError(
                        -32002,
                        preflight_message(simulated.err()),
                        simulation_json(simulated.err(), simulated.meta()),
                    )
            keys = message.account_keys
            pre_balances, pre_tokens = self.snapshot(keys)
            result = self.svm.send_transaction(tx)
            if isinstance(result, FailedTransactionMetadata):
                err = result.err()
                if not isinstance(
                    err, TransactionErrorInstructionError | TransactionErrorInsufficientFundsForRent
                ):
                    return signature  # not executed: dropped like on a real node
                meta = result.meta()
                error: TransactionErrorType | None = err
            else:
                meta, error = result, None
            post_balances, post_tokens = self.snapshot(keys)
            self.history[signature] = Record(
                tx=tx,
                slot=self.slot,
                block_time=int(time.time()),
                err=error,
                fee=meta.fee() or fee,
                logs=meta.logs(),
                units=meta.compute_units_consumed(),
                pre_balances=pre_balances,
                post_balances=post_balances,
                pre_tokens=pre_tokens,
                post_tokens=post_tokens,
            )
            if len(self.history) > MAX_HISTORY:
                self.history.popitem(last=False)
            self.advance()
        return signature

    def context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self.slot, "apiVersion": SOLANA_CORE_VERSION}, "value": value}
