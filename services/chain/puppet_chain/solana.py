"""A small port over solana-py's AsyncClient: balances, transfers, simulate, send, confirm, facts.

Every upstream failure or timeout becomes RPC_UNAVAILABLE; nothing here records state, so the
caller decides what an unknown outcome means (an action stays SUBMITTED, never CONFIRMED).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import httpx
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint, TokenAccount
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from puppet_chain import errors
from puppet_chain.policy import WSOL

log = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_ACCOUNT_SIZE = 165


@dataclass(frozen=True, slots=True)
class Holding:
    mint: str
    amount: int
    decimals: int


@dataclass(frozen=True, slots=True)
class Outcome:
    state: Literal["confirmed", "failed", "pending", "unknown"]
    slot: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a landed transaction did to one owner's balances."""

    slot: int
    block_time: float
    fee: int
    sol_delta: int
    """Lamports the owner gained (negative when spent), the fee excluded."""
    token_deltas: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Mint -> (base units gained, decimals)."""
    created_token_accounts: int = 0


class Solana:
    """The Solana RPC as this service uses it."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._client = AsyncClient(url, commitment=Confirmed, timeout=timeout_s)
        self._timeout_s = timeout_s
        self._decimals: dict[str, int] = {WSOL: 9}
        self._rent: int | None = None

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except (TimeoutError, httpx.HTTPError, SolanaRpcException, RPCNoResultException) as exc:
            log.warning("solana %s failed: %s", what, type(exc).__name__)
            raise errors.rpc_unavailable(f"{what}: {type(exc).__name__}") from None
        except RPCException as exc:
            raise errors.rpc_unavailable(f"{what}: {str(exc)[:200]}") from None

    async def balance(self, owner: Pubkey) -> tuple[int, int]:
        """(lamports, slot)."""
        resp = await self._call("getBalance", self._client.get_balance(owner))
        return resp.value, resp.context.slot

    async def holdings(self, owner: Pubkey) -> list[Holding]:
        opts = TokenAccountOpts(program_id=TOKEN_PROGRAM_ID)
        resp = await self._call(
            "getTokenAccountsByOwner", self._client.get_token_accounts_by_owner(owner, opts)
        )
        amounts: dict[str, int] = {}
        for keyed in resp.value:
            account = TokenAccount.from_bytes(bytes(keyed.account.data))
            mint = str(account.mint)
            amounts[mint] = amounts.get(mint, 0) + account.amount
        held = [(mint, amount) for mint, amount in sorted(amounts.items()) if amount]
        return [Holding(mint, amount, await self.decimals(mint)) for mint, amount in held]

    async def decimals(self, mint: str) -> int:
        if mint not in self._decimals:
            resp = await self._call(
                "getAccountInfo", self._client.get_account_info(Pubkey.from_string(mint))
            )
            if resp.value is None:
                raise errors.invalid_field("mint", f"{mint} is not a token mint on this cluster")
            try:
                self._decimals[mint] = Mint.from_bytes(bytes(resp.value.data)).decimals
            except ValueError:
                raise errors.invalid_field("mint", f"{mint} is not a token mint") from None
        return self._decimals[mint]

    async def token_balance(self, owner: Pubkey, mint: str) -> int:
        ata = get_associated_token_address(owner, Pubkey.from_string(mint))
        resp = await self._call("getAccountInfo", self._client.get_account_info(ata))
        if resp.value is None:
            return 0
        return TokenAccount.from_bytes(bytes(resp.value.data)).amount

    async def blockhash(self) -> tuple[Hash, int]:
        resp = await self._call("getLatestBlockhash", self._client.get_latest_blockhash())
        return resp.value.blockhash, resp.value.last_valid_block_height

    async def transfer_tx(
        self,
        payer: Keypair,
        recipient: Pubkey,
        mint: str,
        amount: int,
        blockhash: tuple[Hash, int] | None = None,
    ) -> tuple[VersionedTransaction, int]:
        """A signed SOL (mint "") or SPL transfer and its last valid block height."""
        owner = payer.pubkey()
        if not mint:
            ixs = [
                transfer(TransferParams(from_pubkey=owner, to_pubkey=recipient, lamports=amount))
            ]
        else:
            key = Pubkey.from_string(mint)
            params = TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=get_associated_token_address(owner, key),
                mint=key,
                dest=get_associated_token_address(recipient, key),
                owner=owner,
                amount=amount,
                decimals=await self.decimals(mint),
            )
            create = create_idempotent_associated_token_account(owner, recipient, key)
            ixs = [create, transfer_checked(params)]
        recent, last_valid = blockhash or await self.blockhash()
        message = MessageV0.try_compile(owner, ixs, [], recent)
        return VersionedTransaction(message, [payer]), last_valid

    async def simulate(self, tx: VersionedTransaction) -> str:
        """'' when the simulation succeeds, else the error."""
        resp = await self._call("simulateTransaction", self._client.simulate_transaction(tx))
        return "" if resp.value.err is None else str(resp.value.err)[:300]

    async def send(self, raw: bytes) -> str:
        """'' once the node accepted the transaction; else its rejection (preflight, replay)."""
        opts = TxOpts(skip_preflight=False, preflight_commitment=Confirmed)
        try:
            await asyncio.wait_for(
                self._client.send_raw_transaction(raw, opts=opts), self._timeout_s
            )
        except RPCException as exc:
            return str(exc)[:300]
        except (TimeoutError, httpx.HTTPError, SolanaRpcException, RPCNoResultException) as exc:
            raise errors.rpc_unavailable(f"sendTransaction: {type(exc).__name__}") from None
        return ""

    async def status(self, signature: str) -> Outcome:
        sig = Signature.from_string(signature)
        resp = await self._call("getSignatureStatuses", self._client.get_signature_statuses([sig]))
        found = resp.value[0]
        if found is None:
            return Outcome("unknown")
        if found.err is not None:
            return Outcome("failed", found.slot, str(found.err)[:300])
        level = str(found.confirmation_status or "")
        if level.endswith(("Confirmed", "Finalized")):
            return Outcome("confirmed", found.slot)
        return Outcome("pending", found.slot)

    async def confirm(self, signature: str, wait_s: float) -> Outcome:
        """The status once confirmed or failed, or the last one seen after wait_s."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + wait_s, 0.002
        while True:
            outcome = await self.status(signature)
            if outcome.state in ("confirmed", "failed") or loop.time() + pause > deadline:
                return outcome
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def blockhash_valid(self, last_valid_block_height: int) -> bool:
        resp = await self._call("getBlockHeight", self._client.get_block_height())
        return resp.value <= last_valid_block_height

    async def facts(self, signature: str, owner: Pubkey) -> Facts:
        sig = Signature.from_string(signature)
        resp = await self._call(
            "getTransaction",
            self._client.get_transaction(sig, max_supported_transaction_version=0),
        )
        found = resp.value
        if found is None or found.transaction.meta is None:
            raise errors.rpc_unavailable("getTransaction: the transaction is not available yet")
        meta = found.transaction.meta
        # The owner is the fee payer of every transaction this service signs: account 0.
        sol_delta = meta.post_balances[0] - meta.pre_balances[0] + meta.fee
        deltas: dict[str, tuple[int, int]] = {}
        before: dict[str, int] = {}
        for balance in meta.pre_token_balances or []:
            if balance.owner == owner:
                before[str(balance.mint)] = int(balance.ui_token_amount.amount)
        created = 0
        for balance in meta.post_token_balances or []:
            if balance.owner != owner:
                continue
            mint = str(balance.mint)
            created += mint not in before
            gained = int(balance.ui_token_amount.amount) - before.pop(mint, 0)
            deltas[mint] = (gained, balance.ui_token_amount.decimals)
        for mint, amount in before.items():
            deltas[mint] = (-amount, self._decimals.get(mint, 0))
        return Facts(found.slot, float(found.block_time or 0), meta.fee, sol_delta, deltas, created)

    async def token_account_rent(self) -> int:
        if self._rent is None:
            resp = await self._call(
                "getMinimumBalanceForRentExemption",
                self._client.get_minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_SIZE),
            )
            self._rent = resp.value
        return self._rent

    async def airdrop(self, owner: Pubkey, lamports: int, wait_s: float) -> str:
        resp = await self._call("requestAirdrop", self._client.request_airdrop(owner, lamports))
        signature = str(resp.value)
        outcome = await self.confirm(signature, wait_s)
        if outcome.state != "confirmed":
            raise errors.rpc_unavailable(f"airdrop {outcome.state}: {outcome.error}")
        return signature
