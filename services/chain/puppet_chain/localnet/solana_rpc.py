"""A local Solana JSON-RPC node: solders' LiteSVM behind an HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from solders.account import Account
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.signature import Signature
from solders.system_program import (
    CreateAccountParams,
    TransferParams,
    create_account,
    transfer,
)
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint, TokenAccount
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorInsufficientFundsForRent,
    TransactionErrorType,
)
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    initialize_mint2,
    mint_to_checked,
)
from spl.token.models import InitializeMint2Params, MintToCheckedParams

from puppet_chain.localnet._http import FailureKind, LocalHttpServer, Request, Response

__all__ = ["FailureKind", "LocalSolana", "RpcError"]

logger = logging.getLogger(__name__)

LAMPORTS_PER_SIGNATURE = 5_000
SOLANA_CORE_VERSION = "2.2.7"
FEATURE_SET = 3_294_202_862
_RENT_EXEMPT_EPOCH = 18_446_744_073_709_551_615
_TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
_MINT_LEN = 82
_TOKEN_ACCOUNT_LEN = 165
_FAUCET_LAMPORTS = 10**17
_MAX_HISTORY = 100_000
_FIELDLESS_MESSAGES = [
    (TransactionErrorFieldless.AlreadyProcessed, "This transaction has already been processed"),
    (TransactionErrorFieldless.BlockhashNotFound, "Blockhash not found"),
    (
        TransactionErrorFieldless.AccountNotFound,
        "Attempt to debit an account but found no record of a prior credit.",
    ),
    (TransactionErrorFieldless.InsufficientFundsForFee, "Insufficient funds for fee"),
]


class RpcError(Exception):
    """A JSON-RPC error object, raised by a method handler and written as the response."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        """The `error` member of the response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True, slots=True)
class _TokenBalance:
    index: int
    mint: Pubkey
    owner: Pubkey
    program: Pubkey
    amount: int
    decimals: int


@dataclass(frozen=True, slots=True)
class _Record:
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
    pre_tokens: list[_TokenBalance]
    post_tokens: list[_TokenBalance]


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana uses for keys, signatures and instruction data."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of `b58encode`; raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58 character {char!r}")
        number = number * 58 + digit
    pad = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * pad + body


def _err_json(err: TransactionErrorType | None) -> Any:
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


def _ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": _ui_amount_string(amount, decimals),
    }


def _preflight_message(err: TransactionErrorType) -> str:
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


def _simulation_json(
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


def _param(params: Sequence[Any], index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index and params[index] is not None else default


def _pubkey(value: Any) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError as exc:
        raise RpcError(-32602, f"Invalid param: {exc}") from None


def _decode(data: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(data, validate=True)
        if encoding == "base58":
            return b58decode(data)
    except ValueError as exc:
        raise RpcError(-32602, f"invalid transaction: failed to decode {encoding}: {exc}") from None
    raise RpcError(-32602, f"unsupported encoding: {encoding}. Supported encodings: base58, base64")


def _decode_tx(data: Any, config: dict[str, Any]) -> VersionedTransaction:
    raw = _decode(str(data), str(config.get("encoding") or "base58"))
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcError(-32602, f"invalid transaction: {exc}") from None


class LocalSolana:
    """A single-bank Solana node on 127.0.0.1 for tests and the embedded (`up`) mode.

    Every transaction really executes on LiteSVM (System, SPL Token, Token-2022 and ATA programs
    are loaded). Each processed transaction advances the slot, the block height and the blockhash;
    a blockhash stays valid for `blockhash_valid_blocks` blocks. Commitment levels are ignored:
    a processed transaction is reported `finalized`. Address lookup tables are not resolved.
    """

    def __init__(self, *, blockhash_valid_blocks: int = 150, stall_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._svm = LiteSVM().with_blockhash_check(False)
        self._faucet = Keypair()
        self._svm.set_account(
            self._faucet.pubkey(),
            Account(_FAUCET_LAMPORTS, b"", Pubkey.from_string("11111111111111111111111111111111")),
        )
        self._slot = self._svm.get_clock().slot
        self._height = self._slot
        self._genesis = self._svm.latest_blockhash()
        self._tx_count = 0
        self._valid_blocks = blockhash_valid_blocks
        self._blockhashes: collections.OrderedDict[Hash, int] = collections.OrderedDict()
        self._blockhashes[self._svm.latest_blockhash()] = self._height + blockhash_valid_blocks
        self._history: collections.OrderedDict[Signature, _Record] = collections.OrderedDict()
        self._decimals: dict[Pubkey, int] = {}
        self._mint_authorities: dict[Pubkey, Keypair] = {}
        self._http = LocalHttpServer(self._serve, name="local-solana", stall_s=stall_s)
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "getHealth": lambda _p: "ok",
            "getVersion": lambda _p: {
                "solana-core": SOLANA_CORE_VERSION,
                "feature-set": FEATURE_SET,
            },
            "getSlot": lambda _p: self._slot,
            "getBlockHeight": lambda _p: self._height,
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
            "getAccountInfo": self._get_account_info,
            "getMultipleAccounts": self._get_multiple_accounts,
            "getTokenAccountBalance": self._get_token_account_balance,
            "getTokenAccountsByOwner": self._get_token_accounts_by_owner,
            "getTokenSupply": self._get_token_supply,
            "getEpochInfo": self._get_epoch_info,
            "getSignaturesForAddress": self._get_signatures_for_address,
            "getGenesisHash": lambda _p: str(self._genesis),
            "getTransactionCount": lambda _p: self._tx_count,
            "getRecentPrioritizationFees": lambda _p: [],
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on 127.0.0.1 on a free port; returns the endpoint URL."""
        return self._http.start()

    def stop(self) -> None:
        """Stop serving; stalled requests are released."""
        self._http.stop()

    @property
    def url(self) -> str:
        """The JSON-RPC endpoint, e.g. http://127.0.0.1:54321."""
        return self._http.url

    def __enter__(self) -> LocalSolana:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ test and dev helpers

    def fail_next(self, n: int = 1, kind: FailureKind = "http500") -> None:
        """Make the next `n` HTTP requests fail: `http500` answers 500, `timeout` never answers
        (the connection is held for `stall_s` seconds or until `stop()`, then closed)."""
        self._http.fail_next(n, kind)

    def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Fund `pubkey` with a real transfer from the faucet (recorded like any transaction)."""
        ix = transfer(
            TransferParams(from_pubkey=self._faucet.pubkey(), to_pubkey=pubkey, lamports=lamports)
        )
        return self._run_internal([ix], [self._faucet])

    def create_mint(self, authority: Keypair, decimals: int) -> Pubkey:
        """Create and initialise an SPL Token mint whose mint authority is `authority`."""
        mint = Keypair()
        with self._lock:
            rent = self._svm.minimum_balance_for_rent_exemption(_MINT_LEN)
        ixs = [
            create_account(
                CreateAccountParams(
                    from_pubkey=self._faucet.pubkey(),
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=_MINT_LEN,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMint2Params(
                    decimals=decimals,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    mint_authority=authority.pubkey(),
                    freeze_authority=None,
                )
            ),
        ]
        self._run_internal(ixs, [self._faucet, mint])
        self._mint_authorities[mint.pubkey()] = authority
        return mint.pubkey()

    def mint_to(self, mint: Pubkey, owner: Pubkey, amount: int) -> Pubkey:
        """Mint `amount` base units to `owner`'s associated token account (created when
        missing); returns that account. The mint must come from `create_mint`."""
        authority = self._mint_authorities.get(mint)
        if authority is None:
            raise ValueError(f"{mint} was not created by this LocalSolana")
        ata = get_associated_token_address(owner, mint)
        ixs = [
            create_idempotent_associated_token_account(self._faucet.pubkey(), owner, mint),
            mint_to_checked(
                MintToCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint,
                    dest=ata,
                    mint_authority=authority.pubkey(),
                    amount=amount,
                    decimals=self._mint_decimals(mint),
                )
            ),
        ]
        self._run_internal(ixs, [self._faucet, authority])
        return ata

    def create_token_account(self, mint: Pubkey, owner: Pubkey) -> Pubkey:
        """Create `owner`'s associated token account for any SPL Token mint (idempotent)."""
        ix = create_idempotent_associated_token_account(self._faucet.pubkey(), owner, mint)
        self._run_internal([ix], [self._faucet])
        return get_associated_token_address(owner, mint)

    def mint_decimals(self, mint: Pubkey) -> int:
        """The decimals of an SPL Token mint; raises RpcError when `mint` is not one."""
        with self._lock:
            return self._mint_decimals(mint)

    def balance(self, pubkey: Pubkey) -> int:
        """Lamports held by `pubkey` (0 when the account does not exist)."""
        with self._lock:
            return self._svm.get_balance(pubkey) or 0

    def token_balance(self, token_account: Pubkey) -> int:
        """Base units held by an SPL token account (0 when it does not exist)."""
        with self._lock:
            account = self._svm.get_account(token_account)
        if account is None or len(account.data) < _TOKEN_ACCOUNT_LEN:
            return 0
        return TokenAccount.from_bytes(bytes(account.data[:_TOKEN_ACCOUNT_LEN])).amount

    @property
    def slot(self) -> int:
        """The current slot (one slot per processed transaction)."""
        return self._slot

    @property
    def block_height(self) -> int:
        """The current block height (one block per processed transaction)."""
        return self._height

    def latest_blockhash(self) -> tuple[Hash, int]:
        """The latest blockhash and its last valid block height."""
        with self._lock:
            blockhash = next(reversed(self._blockhashes))
            return blockhash, self._blockhashes[blockhash]

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> Signature:
        """Process a signed transaction in-process, exactly as `sendTransaction` does."""
        return self._submit(tx, preflight=not skip_preflight)

    # ------------------------------------------------------------------ bank internals

    def _run_internal(self, ixs: list[Instruction], signers: list[Keypair]) -> Signature:
        blockhash, _ = self.latest_blockhash()
        message = MessageV0.try_compile(signers[0].pubkey(), ixs, [], blockhash)
        return self._submit(VersionedTransaction(message, signers), preflight=True)

    def _mint_decimals(self, mint: Pubkey) -> int:
        decimals = self._decimals.get(mint)
        if decimals is None:
            account = self._svm.get_account(mint)
            if account is None or account.owner not in _TOKEN_PROGRAMS:
                raise RpcError(-32602, "Invalid param: not a Token mint")
            decimals = Mint.from_bytes(bytes(account.data[:_MINT_LEN])).decimals
            self._decimals[mint] = decimals
        return decimals

    def _token_account(self, account: Account | None) -> TokenAccount | None:
        if account is None or account.owner not in _TOKEN_PROGRAMS:
            return None
        data = bytes(account.data)
        is_account = len(data) == _TOKEN_ACCOUNT_LEN or (
            len(data) > _TOKEN_ACCOUNT_LEN and data[_TOKEN_ACCOUNT_LEN] == 2
        )
        if not is_account:
            return None
        return TokenAccount.from_bytes(data[:_TOKEN_ACCOUNT_LEN])

    def _snapshot(self, keys: Sequence[Pubkey]) -> tuple[list[int], list[_TokenBalance]]:
        lamports: list[int] = []
        tokens: list[_TokenBalance] = []
        for index, key in enumerate(keys):
            account = self._svm.get_account(key)
            lamports.append(account.lamports if account is not None else 0)
            token = self._token_account(account)
            if token is not None and account is not None:
                tokens.append(
                    _TokenBalance(
                        index,
                        token.mint,
                        token.owner,
                        account.owner,
                        token.amount,
                        self._mint_decimals(token.mint),
                    )
                )
        return lamports, tokens

    def _blockhash_valid(self, blockhash: Hash) -> bool:
        last_valid = self._blockhashes.get(blockhash)
        return last_valid is not None and self._height <= last_valid

    def _advance(self) -> None:
        self._tx_count += 1
        self._slot += 1
        self._height += 1
        self._svm.warp_to_slot(self._slot)
        self._svm.expire_blockhash()
        self._blockhashes[self._svm.latest_blockhash()] = self._height + self._valid_blocks
        while len(self._blockhashes) > self._valid_blocks + 1:
            self._blockhashes.popitem(last=False)

    def _submit(self, tx: VersionedTransaction, *, preflight: bool) -> Signature:
        if not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        signature = tx.signatures[0]
        message = tx.message
        with self._lock:
            fee = LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
            if signature in self._history:
                if preflight:
                    already = TransactionErrorFieldless.AlreadyProcessed
                    raise RpcError(
                        -32002, _preflight_message(already), _simulation_json(already, None)
                    )
                return signature
            if not self._blockhash_valid(message.recent_blockhash):
                if preflight:
                    missing = TransactionErrorFieldless.BlockhashNotFound
                    raise RpcError(
                        -32002, _preflight_message(missing), _simulation_json(missing, None)
                    )
                return signature  # a real node drops it silently
            if preflight:
                simulated = self._svm.simulate_transaction(tx)
                if isinstance(simulated, FailedTransactionMetadata):
                    raise RpcError(
                        -32002,
                        _preflight_message(simulated.err()),
                        _simulation_json(simulated.err(), simulated.meta()),
                    )
            keys = message.account_keys
            pre_balances, pre_tokens = self._snapshot(keys)
            result = self._svm.send_transaction(tx)
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
            post_balances, post_tokens = self._snapshot(keys)
            self._history[signature] = _Record(
                tx=tx,
                slot=self._slot,
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
            if len(self._history) > _MAX_HISTORY:
                self._history.popitem(last=False)
            self._advance()
        return signature

    # ------------------------------------------------------------------ JSON-RPC methods

    def _context(self, value: Any) -> dict[str, Any]:
        return {"context": {"slot": self._slot, "apiVersion": SOLANA_CORE_VERSION}, "value": value}

    def _get_epoch_info(self, _params: list[Any]) -> Any:
        with self._lock:
            slots_per_epoch = self._svm.get_epoch_schedule().slots_per_epoch
            return {
                "absoluteSlot": self._slot,
                "blockHeight": self._height,
                "epoch": self._slot // slots_per_epoch,
                "slotIndex": self._slot % slots_per_epoch,
                "slotsInEpoch": slots_per_epoch,
                "transactionCount": self._tx_count,
            }

    def _get_latest_blockhash(self, _params: list[Any]) -> Any:
        blockhash, last_valid = self.latest_blockhash()
        return self._context({"blockhash": str(blockhash), "lastValidBlockHeight": last_valid})

    def _is_blockhash_valid(self, params: list[Any]) -> Any:
        try:
            blockhash = Hash.from_string(str(_param(params, 0, "")))
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        with self._lock:
            return self._context(self._blockhash_valid(blockhash))

    def _get_balance(self, params: list[Any]) -> Any:
        key = _pubkey(_param(params, 0))
        with self._lock:
            return self._context(self._svm.get_balance(key) or 0)

    def _get_min_rent(self, params: list[Any]) -> Any:
        size = _param(params, 0)
        if not isinstance(size, int) or size < 0:
            raise RpcError(-32602, "Invalid params: expected a data length")
        with self._lock:
            return self._svm.minimum_balance_for_rent_exemption(size)

    def _get_fee_for_message(self, params: list[Any]) -> Any:
        raw = _decode(str(_param(params, 0, "")), "base64")
        try:
            message = from_bytes_versioned(raw)
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        with self._lock:
            if not self._blockhash_valid(message.recent_blockhash):
                return self._context(None)
            return self._context(LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures)

    def _request_airdrop(self, params: list[Any]) -> Any:
        key = _pubkey(_param(params, 0))
        lamports = _param(params, 1)
        if not isinstance(lamports, int) or lamports <= 0:
            raise RpcError(-32602, "Invalid params: expected lamports")
        return str(self.airdrop(key, lamports))

    def _send_transaction(self, params: list[Any]) -> Any:
        config = _param(params, 1, {})
        tx = _decode_tx(_param(params, 0, ""), config)
        return str(self._submit(tx, preflight=not config.get("skipPreflight", False)))

    def _simulate_transaction(self, params: list[Any]) -> Any:
        config = _param(params, 1, {})
        tx = _decode_tx(_param(params, 0, ""), config)
        sig_verify = bool(config.get("sigVerify", False))
        replace = bool(config.get("replaceRecentBlockhash", False))
        if sig_verify and replace:
            raise RpcError(-32602, "sigVerify may not be used with replaceRecentBlockhash")
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        fee = LAMPORTS_PER_SIGNATURE * tx.message.header.num_required_signatures
        with self._lock:
            replacement = None
            if replace:
                blockhash = next(reversed(self._blockhashes))
                replacement = {
                    "blockhash": str(blockhash),
                    "lastValidBlockHeight": self._blockhashes[blockhash],
                }
            elif not self._blockhash_valid(tx.message.recent_blockhash):
                err = TransactionErrorFieldless.BlockhashNotFound
                return self._context(_simulation_json(err, None))
            self._svm.with_sigverify(False)
            try:
                simulated = self._svm.simulate_transaction(tx)
            finally:
                self._svm.with_sigverify(True)
            if isinstance(simulated, FailedTransactionMetadata):
                return self._context(
                    _simulation_json(
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
                    key = _pubkey(address)
                    account = post.get(key) or self._svm.get_account(key)
                    accounts.append(self._account_json(account, encoding, None))
            return self._context(
                _simulation_json(
                    None, simulated.meta(), fee=fee, replacement=replacement, accounts=accounts
                )
            )

    def _get_signature_statuses(self, params: list[Any]) -> Any:
        raw = _param(params, 0, [])
        if not isinstance(raw, list):
            raise RpcError(-32602, "Invalid params: expected a list of signatures")
        statuses: list[Any] = []
        with self._lock:
            for item in raw:
                try:
                    record = self._history.get(Signature.from_string(str(item)))
                except ValueError:
                    raise RpcError(-32602, f"Invalid param: invalid signature {item}") from None
                if record is None:
                    statuses.append(None)
                    continue
                err = _err_json(record.err)
                statuses.append(
                    {
                        "slot": record.slot,
                        "confirmations": None,
                        "err": err,
                        "status": {"Ok": None} if err is None else {"Err": err},
                        "confirmationStatus": "finalized",
                    }
                )
            return self._context(statuses)

    def _get_signatures_for_address(self, params: list[Any]) -> Any:
        address = _pubkey(_param(params, 0))
        config = _param(params, 1, {})
        limit = int(config.get("limit") or 1000)
        if not 1 <= limit <= 1000:
            raise RpcError(-32602, "Invalid limit; max 1000")
        before, until = config.get("before"), config.get("until")
        found: list[dict[str, Any]] = []
        with self._lock:
            started = before is None
            for signature, record in reversed(self._history.items()):
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
                        "err": _err_json(record.err),
                        "memo": None,
                        "blockTime": record.block_time,
                        "confirmationStatus": "finalized",
                    }
                )
        return found

    def _get_transaction(self, params: list[Any]) -> Any:
        try:
            signature = Signature.from_string(str(_param(params, 0, "")))
        except ValueError as exc:
            raise RpcError(-32602, f"Invalid param: {exc}") from None
        config = _param(params, 1, {})
        if isinstance(config, str):
            config = {"encoding": config}
        encoding = config.get("encoding") or "json"
        with self._lock:
            record = self._history.get(signature)
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
            transaction: Any = self._transaction_json(record.tx)
        elif encoding in ("base64", "base58"):
            raw = bytes(record.tx)
            text = base64.b64encode(raw).decode() if encoding == "base64" else b58encode(raw)
            transaction = [text, encoding]
        else:
            raise RpcError(-32602, f"Invalid params: unsupported encoding {encoding} here")
        err = _err_json(record.err)
        meta = {
            "err": err,
            "status": {"Ok": None} if err is None else {"Err": err},
            "fee": record.fee,
            "preBalances": record.pre_balances,
            "postBalances": record.post_balances,
            "innerInstructions": [],
            "logMessages": record.logs,
            "preTokenBalances": [self._token_balance_json(b) for b in record.pre_tokens],
            "postTokenBalances": [self._token_balance_json(b) for b in record.post_tokens],
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

    @staticmethod
    def _token_balance_json(balance: _TokenBalance) -> dict[str, Any]:
        return {
            "accountIndex": balance.index,
            "mint": str(balance.mint),
            "owner": str(balance.owner),
            "programId": str(balance.program),
            "uiTokenAmount": _ui_token_amount(balance.amount, balance.decimals),
        }

    @staticmethod
    def _transaction_json(tx: VersionedTransaction) -> dict[str, Any]:
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

    def _account_json(
        self, account: Account | None, encoding: str, data_slice: dict[str, int] | None
    ) -> Any:
        if account is None:
            return None
        data = bytes(account.data)
        encoded: Any
        parsed = encoding == "jsonParsed" and self._parsed_json(account)
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
            "rentEpoch": _RENT_EXEMPT_EPOCH,
            "space": len(account.data),
        }

    def _parsed_json(self, account: Account) -> dict[str, Any] | None:
        program = _TOKEN_PROGRAMS.get(account.owner)
        if program is None:
            return None
        token = self._token_account(account)
        info: dict[str, Any]
        if token is not None:
            info = {
                "isNative": token.is_native is not None,
                "mint": str(token.mint),
                "owner": str(token.owner),
                "state": "frozen" if int(token.state) == 2 else "initialized",
                "tokenAmount": _ui_token_amount(token.amount, self._mint_decimals(token.mint)),
            }
            kind = "account"
        elif len(account.data) >= _MINT_LEN:
            mint = Mint.from_bytes(bytes(account.data[:_MINT_LEN]))
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

    def _get_account_info(self, params: list[Any]) -> Any:
        key = _pubkey(_param(params, 0))
        config = _param(params, 1, {})
        with self._lock:
            account = self._svm.get_account(key)
            return self._context(
                self._account_json(
                    account, config.get("encoding", "base64"), config.get("dataSlice")
                )
            )

    def _get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = [_pubkey(key) for key in _param(params, 0, [])]
        config = _param(params, 1, {})
        encoding = config.get("encoding", "base64")
        with self._lock:
            return self._context(
                [
                    self._account_json(
                        self._svm.get_account(key), encoding, config.get("dataSlice")
                    )
                    for key in keys
                ]
            )

    def _get_token_account_balance(self, params: list[Any]) -> Any:
        key = _pubkey(_param(params, 0))
        with self._lock:
            token = self._token_account(self._svm.get_account(key))
            if token is None:
                raise RpcError(-32602, "Invalid param: could not find account")
            return self._context(_ui_token_amount(token.amount, self._mint_decimals(token.mint)))

    def _get_token_supply(self, params: list[Any]) -> Any:
        key = _pubkey(_param(params, 0))
        with self._lock:
            account = self._svm.get_account(key)
            if account is None or account.owner not in _TOKEN_PROGRAMS:
                raise RpcError(-32602, "Invalid param: not a Token mint")
            mint = Mint.from_bytes(bytes(account.data[:_MINT_LEN]))
            return self._context(_ui_token_amount(mint.supply, mint.decimals))

    def _get_token_accounts_by_owner(self, params: list[Any]) -> Any:
        owner = _pubkey(_param(params, 0))
        filter_ = _param(params, 1, {})
        config = _param(params, 2, {})
        encoding = config.get("encoding", "base64")
        with self._lock:
            mint: Pubkey | None = None
            if "mint" in filter_:
                mint = _pubkey(filter_["mint"])
                mint_account = self._svm.get_account(mint)
                if mint_account is None or mint_account.owner not in _TOKEN_PROGRAMS:
                    raise RpcError(-32602, "Invalid param: not a Token mint")
                program = mint_account.owner
            elif "programId" in filter_:
                program = _pubkey(filter_["programId"])
                if program not in _TOKEN_PROGRAMS:
                    raise RpcError(-32602, "Invalid param: unrecognized Token program id")
            else:
                raise RpcError(-32602, "Invalid params: expected a mint or programId filter")
            found: list[dict[str, Any]] = []
            for key, account in self._svm.get_program_accounts(program):
                token = self._token_account(account)
                if token is None or token.owner != owner or (mint and token.mint != mint):
                    continue
                found.append(
                    {
                        "pubkey": str(key),
                        "account": self._account_json(account, encoding, config.get("dataSlice")),
                    }
                )
            found.sort(key=lambda item: item["pubkey"])
            return self._context(found)

    # ------------------------------------------------------------------ HTTP plumbing

    def _call(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32600, "message": "Invalid request"},
                "id": None,
            }
        request_id = request.get("id")
        method = self._methods.get(request["method"])
        try:
            if method is None:
                raise RpcError(-32601, "Method not found")
            params = request.get("params") or []
            if not isinstance(params, list):
                raise RpcError(-32602, "Invalid params: expected an array")
            return {"jsonrpc": "2.0", "result": method(params), "id": request_id}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32602, "message": f"Invalid params: {exc}"},
                "id": request_id,
            }

    def _serve(self, request: Request) -> Response | None:
        if request.method == "GET":
            if request.path.rstrip("/") == "/health":
                return Response(200, b"ok", "text/plain")
            return Response(404, b"not found", "text/plain")
        return Response(200, self._handle(request.body))

    def _handle(self, body: bytes) -> bytes:
        try:
            request = json.loads(body)
        except ValueError:
            response: Any = {
                "jsonrpc": "2.0",
                "error": {"code": -32700, "message": "Parse error"},
                "id": None,
            }
        else:
            if isinstance(request, list):
                response = [self._call(item) for item in request]
            else:
                response = self._call(request)
        return json.dumps(response, separators=(",", ":")).encode()
