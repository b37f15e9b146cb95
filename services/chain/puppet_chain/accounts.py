"""Wallets, their policies, balances, prices and airdrops: everything except actions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from puppet_runtime import Unavailable
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from puppet_chain import errors
from puppet_chain.jupiter import Jupiter
from puppet_chain.policy import WSOL, Rules
from puppet_chain.solana import Holding, Solana
from puppet_chain.store import AuditKind, AuditRow, ChainStore, WalletRow
from puppet_chain.wallets import Keystore, parse_secret

log = logging.getLogger(__name__)
LEASE_TTL_S = 120.0
"""Longest a crashed replica can keep a wallet's lease (a call holds it for far less)."""
POLICY_FIELDS = tuple(f.name for f in fields(Rules) if f.name != "update_time")


@dataclass(frozen=True, slots=True)
class Valued:
    """A balance with USD values (0 when no price is known)."""

    lamports: int
    slot: int
    tokens: list[tuple[Holding, float]]
    total_usd: float


class Accounts:
    """Wallet keys (sealed at rest), policies and the read-only chain calls."""

    def __init__(
        self,
        store: ChainStore,
        keystore: Keystore,
        solana: Solana,
        jupiter: Jupiter,
        *,
        cluster: str,
        default_rules: Rules,
        symbols: dict[str, str],
        price_source: str,
        confirm_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.solana, self.jupiter = store, solana, jupiter
        self._keystore = keystore
        self.cluster = cluster
        self._default_rules = default_rules
        self.symbols = symbols
        self.price_source = price_source
        self._confirm_timeout_s = confirm_timeout_s
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._owner = uuid.uuid4().hex

    @contextlib.asynccontextmanager
    async def lock(self, wallet_id: str) -> AsyncIterator[None]:
        """Serialise one wallet's work (caps and idempotency are per wallet): an asyncio lock in
        this process, then a lease in the store, which replicas share."""
        async with self._locks.setdefault(wallet_id, asyncio.Lock()):
            key, pause = f"wallet/{wallet_id}", 0.005
            while not await self.store.acquire(key, self._owner, self.clock(), LEASE_TTL_S):
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.2)
            try:
                yield
            finally:
                await self.store.release(key, self._owner)

    async def audit(self, entry: AuditRow) -> AuditRow:
        return await self.store.append_audit(entry)

    async def wallet(self, wallet_id: str) -> WalletRow:
        row = await self.store.get_wallet(wallet_id)
        if row is None:
            raise errors.wallet_not_found(f"wallets/{wallet_id}")
        return row

    def keypair(self, wallet: WalletRow) -> Keypair:
        return self._keystore.open(wallet.sealed_key, wallet.address)

    async def add(
        self, wallet_id: str, agent: str, secret: str | None, request_id: str, actor: str
    ) -> WalletRow:
        """Import (secret given) or create a wallet; a repeated request_id returns it again."""
        keypair = Keypair() if secret is None else parse_secret(secret)
        verb = "create" if secret is None else "import"
        fingerprint = f"{verb}|{wallet_id}|{agent}|{keypair.pubkey() if secret else ''}"
        key = f"wallet/{request_id}"
        if request_id:
            stored = await self.store.recall(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    raise errors.request_id_reused(request_id)
                return await self.wallet(stored[1])
        row = WalletRow(
            wallet_id, agent, str(keypair.pubkey()), self._keystore.seal(keypair), self.clock()
        )
        if not await self.store.add_wallet(row):
            raise errors.wallet_already_exists(f"wallets/{wallet_id}")
        if request_id:
            await self.store.remember(key, fingerprint, wallet_id)
        await self.audit(
            AuditRow(
                wallet_id,
                AuditKind.WALLET_ADDED,
                row.create_time,
                actor,
                request_id,
                detail=f"{verb}d {row.address}",
            )
        )
        log.info("wallet %s %sd with address %s", wallet_id, verb, row.address)
        return row

    async def rules(self, wallet_id: str) -> Rules:
        doc = await self.store.get_policy(wallet_id)
        return self._default_rules if doc is None else rules_from_doc(doc)

    async def update_rules(
        self, wallet_id: str, changes: dict[str, Any], request_id: str, actor: str
    ) -> Rules:
        await self.wallet(wallet_id)
        async with self.lock(wallet_id):
            if request_id:
                fingerprint = repr(sorted(changes.items()))
                stored = await self.store.remember(
                    f"policy/{wallet_id}/{request_id}", fingerprint, ""
                )
                if stored[0] != fingerprint:
                    raise errors.request_id_reused(request_id)
            now = self.clock()
            rules = replace(await self.rules(wallet_id), **changes, update_time=now)
            await self.store.put_policy(wallet_id, rules_doc(rules))
            await self.audit(
                AuditRow(
                    wallet_id,
                    AuditKind.POLICY_UPDATED,
                    now,
                    actor,
                    request_id,
                    detail="changed " + ", ".join(sorted(changes)),
                )
            )
            return rules

    async def prices(self, mints: list[str]) -> dict[str, tuple[float, float]]:
        return await self.jupiter.prices(mints)

    async def valued_balance(self, wallet: WalletRow) -> Valued:
        owner = Pubkey.from_string(wallet.address)
        (lamports, slot), holdings = await asyncio.gather(
            self.solana.balance(owner), self.solana.holdings(owner)
        )
        try:
            prices = await self.prices([WSOL, *(h.mint for h in holdings)])
        except Unavailable:
            prices = {}
        sol_usd = lamports / 1e9 * prices.get(WSOL, (0.0, 0.0))[0]
        tokens = [
            (h, h.amount / 10**h.decimals * prices.get(h.mint, (0.0, 0.0))[0]) for h in holdings
        ]
        return Valued(lamports, slot, tokens, sol_usd + sum(usd for _, usd in tokens))

    async def airdrop(self, wallet_id: str, lamports: int, request_id: str) -> tuple[str, int]:
        wallet = await self.wallet(wallet_id)
        if self.cluster == "mainnet-beta":
            raise errors.airdrop_unavailable(self.cluster)
        owner = Pubkey.from_string(wallet.address)
        key, fingerprint = f"airdrop/{wallet_id}/{request_id}", str(lamports)
        async with self.lock(wallet_id):
            stored = await self.store.recall(key) if request_id else None
            if stored is not None:
                if stored[0] != fingerprint:
                    raise errors.request_id_reused(request_id)
                signature = stored[1]
            else:
                signature = await self.solana.airdrop(owner, lamports, self._confirm_timeout_s)
                if request_id:
                    await self.store.remember(key, fingerprint, signature)
        balance, _ = await self.solana.balance(owner)
        return signature, balance


def rules_doc(rules: Rules) -> dict[str, Any]:
    doc = asdict(rules)
    for name in ("allowed_mints", "denied_mints", "allowed_recipients"):
        doc[name] = list(doc[name])
    return doc


def rules_from_doc(doc: dict[str, Any]) -> Rules:
    values = {f.name: doc[f.name] for f in fields(Rules) if f.name in doc}
    for name in ("allowed_mints", "denied_mints", "allowed_recipients"):
        values[name] = tuple(values.get(name, ()))
    return Rules(**values)
