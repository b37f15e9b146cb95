"""Transfers and swaps from request to outcome: idempotency, decision, audit, send, receipt.

A wallet's actions run one at a time (its lock), so a retry storm with one request_id finds the
first call's action and the daily caps see every earlier action. Nothing is recorded before the
decision; a signed transaction is recorded SUBMITTED before it is sent, so an RPC failure after
that leaves it SUBMITTED (re-sent as the same bytes, hence never spent twice) and never CONFIRMED.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from puppet_runtime import Unavailable
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from puppet_chain import errors
from puppet_chain.accounts import Accounts
from puppet_chain.jupiter import Quote
from puppet_chain.policy import (
    LAMPORTS_PER_SOL,
    WSOL,
    Decision,
    Proposal,
    Reason,
    Rule,
    Rules,
    Usage,
    Verdict,
    decide,
)
from puppet_chain.receipts import action_name, build_receipt, quote_doc
from puppet_chain.solana import Outcome
from puppet_chain.store import (
    ActionRow,
    AuditKind,
    AuditRow,
    State,
    WalletRow,
    new_id,
)

log = logging.getLogger(__name__)
FEE_LAMPORTS = 5_000
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Prepared:
    decision: Decision
    tx: VersionedTransaction | None
    last_valid: int
    quote: Quote | None


class Actions:
    """The action flow over Accounts (keys, store, chain and Jupiter ports)."""

    def __init__(self, accounts: Accounts, *, approval_ttl_s: float) -> None:
        self._a = accounts
        self._approval_ttl_s = approval_ttl_s

    async def request(
        self,
        wallet_id: str,
        kind: str,
        spec: dict[str, Any],
        requester: str,
        memo: str,
        request_id: str,
        wait_s: float,
    ) -> ActionRow:
        wallet = await self._a.wallet(wallet_id)
        fingerprint = repr((kind, sorted(spec.items()), requester, memo))
        async with self._a.lock(wallet_id):
            found = await self._a.store.find_action(wallet_id, request_id)
            if found is not None:
                if found.fingerprint != fingerprint:
                    raise errors.request_id_reused(request_id)
                return await self._reconcile(wallet, found, wait_s)
            keypair = self._a.keypair(wallet)
            rules = await self._a.rules(wallet_id)
            prepared = await self._prepare(wallet, keypair, kind, spec, rules, approval=True)
            now = self._a.clock()
            row = ActionRow(
                wallet_id=wallet_id,
                action_id=new_id(now),
                request_id=request_id,
                fingerprint=fingerprint,
                kind=kind,
                spec=dict(spec),
                requester=requester,
                memo=memo,
                create_time=now,
                update_time=now,
            )
            self._apply(row, prepared, now)
            stored = await self._a.store.add_action(row)
            if stored.action_id != row.action_id:  # another replica won the request_id
                return await self._reconcile(wallet, stored, wait_s)
            await self._audit(row, AuditKind.REQUESTED, requester, detail=kind)
            await self._audit(row, AuditKind.DECIDED, "service", decision=row.decision)
            if row.state is State.SUBMITTED:
                await self._send(wallet, row, wait_s)
            return row

    async def evaluate(self, wallet_id: str, kind: str, spec: dict[str, Any]) -> Decision:
        wallet = await self._a.wallet(wallet_id)
        rules = await self._a.rules(wallet_id)
        prepared = await self._prepare(
            wallet, self._a.keypair(wallet), kind, spec, rules, approval=True, build=False
        )
        return prepared.decision

    async def get(self, wallet_id: str, action_id: str, wait_s: float = 0.0) -> ActionRow:
        wallet = await self._a.wallet(wallet_id)
        row = await self._a.store.get_action(wallet_id, action_id)
        if row is None:
            raise errors.action_not_found(f"wallets/{wallet_id}/actions/{action_id}")
        if row.state in (State.SUBMITTED, State.PENDING_APPROVAL):
            async with self._a.lock(wallet_id):
                row = await self._a.store.get_action(wallet_id, action_id) or row
                try:
                    row = await self._reconcile(wallet, row, wait_s)
                except Unavailable:
                    log.warning("could not reconcile %s now", action_name(row))
        return row

    async def approve(self, wallet_id: str, action_id: str, note: str, wait_s: float) -> ActionRow:
        row = await self.get(wallet_id, action_id)
        wallet = await self._a.wallet(wallet_id)
        async with self._a.lock(wallet_id):
            row = await self._a.store.get_action(wallet_id, action_id) or row
            if row.state is State.REJECTED:
                raise errors.not_pending_approval(action_name(row), row.state.name)
            if row.state is not State.PENDING_APPROVAL:
                return row
            await self._audit(row, AuditKind.APPROVED, "operator", detail=note)
            rules = await self._a.rules(wallet_id)
            prepared = await self._prepare(
                wallet,
                self._a.keypair(wallet),
                row.kind,
                row.spec,
                rules,
                approval=False,
                exclude=row.action_id,
            )
            state = self._apply(row, prepared, self._a.clock())
            await self._a.store.put_action(row)
            await self._audit(row, AuditKind.DECIDED, "service", decision=row.decision)
            if state is State.SUBMITTED:
                await self._send(wallet, row, wait_s)
            return row

    async def reject(self, wallet_id: str, action_id: str, note: str) -> ActionRow:
        row = await self.get(wallet_id, action_id)
        async with self._a.lock(wallet_id):
            row = await self._a.store.get_action(wallet_id, action_id) or row
            if row.state is State.REJECTED:
                return row
            if row.state is not State.PENDING_APPROVAL:
                raise errors.not_pending_approval(action_name(row), row.state.name)
            await self._settle(row, State.REJECTED, AuditKind.REJECTED, "operator", detail=note)
            return row

    # ------------------------------------------------------------------ deciding

    async def _prepare(
        self,
        wallet: WalletRow,
        keypair: Keypair,
        kind: str,
        spec: dict[str, Any],
        rules: Rules,
        *,
        approval: bool,
        build: bool = True,
        exclude: str = "",
    ) -> Prepared:
        owner = keypair.pubkey()
        quote: Quote | None = None
        if kind == "transfer":
            mint, amount = spec["mint"] or WSOL, int(spec["amount"])
            slippage, recipient = 0, str(spec["recipient"])
        else:
            mint, amount, recipient = spec["input_mint"], int(spec["amount"]), None
            slippage = int(spec["slippage_bps"]) or rules.slippage_cap
        # Independent reads run together: each is a round trip to the RPC or the store.
        (sol_balance, _), token_balance, usage, recent = await asyncio.gather(
            self._a.solana.balance(owner),
            self._token_balance(owner, mint),
            self._usage(wallet.wallet_id, exclude),
            self._a.solana.blockhash() if kind == "transfer" and build else _none(),
        )
        usage = replace(usage, sol_balance=sol_balance, token_balance=token_balance)
        if kind == "swap":
            quote = await self._a.jupiter.quote(mint, spec["output_mint"], amount, slippage)
        token_out = 0 if mint == WSOL else amount
        value_lamports, value_usd = await self._value(rules, mint, amount)
        proposal = Proposal(
            mints=(mint,) if quote is None else (mint, quote.output_mint),
            recipient=recipient,
            value_lamports=value_lamports,
            value_usd=value_usd,
            sol_out_lamports=amount if mint == WSOL else 0,
            fee_lamports=FEE_LAMPORTS,
            token_out=token_out,
            slippage_bps=slippage,
        )
        decision = decide(rules, proposal, usage, approval=approval)
        if decision.verdict is Verdict.DENY or not build:
            return Prepared(decision, None, 0, quote)
        if quote is None:
            tx, last_valid = await self._a.solana.transfer_tx(
                keypair, Pubkey.from_string(recipient or ""), spec["mint"], amount, recent
            )
        else:
            tx, last_valid = await self._a.jupiter.swap_tx(quote, keypair)
        if rules.simulate_before_send:
            failure = await self._a.solana.simulate(tx)
            if failure:
                reason = Reason(Rule.SIMULATION_FAILED, f"simulation failed: {failure}")
                decision = replace(decision, verdict=Verdict.DENY, reasons=(reason,))
                return Prepared(decision, None, 0, quote)
        return Prepared(decision, tx, last_valid, quote)

    async def _value(self, rules: Rules, mint: str, amount: int) -> tuple[int | None, float | None]:
        usd_rules = rules.max_trade_usd or rules.max_daily_usd or rules.approval_threshold_usd
        if mint == WSOL and not usd_rules:
            return amount, None
        prices = await self._a.prices([WSOL] if mint == WSOL else [WSOL, mint])
        sol_usd = prices.get(WSOL, (0.0, 0.0))[0]
        if mint == WSOL:
            return amount, (amount / LAMPORTS_PER_SOL * sol_usd) if sol_usd else None
        if mint not in prices:
            return None, None
        decimals = await self._a.solana.decimals(mint)
        usd = amount / 10**decimals * prices[mint][0]
        lamports = math.floor(usd / sol_usd * LAMPORTS_PER_SOL) if sol_usd else None
        return lamports, usd

    async def _token_balance(self, owner: Pubkey, mint: str) -> int:
        return 0 if mint == WSOL else await self._a.solana.token_balance(owner, mint)

    async def _usage(self, wallet_id: str, exclude: str) -> Usage:
        now = self._a.clock()
        spent = await self._a.store.spending(wallet_id, now - now % DAY_S, exclude)
        return Usage(
            now=now,
            sol_balance=0,
            spent_lamports=spent.lamports,
            spent_usd=spent.usd,
            actions_today=spent.actions,
            last_action_time=spent.last_time,
        )

    def _apply(self, row: ActionRow, prepared: Prepared, now: float) -> State:
        row.decision, row.update_time = prepared.decision.to_json(), now
        if prepared.quote is not None:
            row.quote = quote_doc(prepared.quote)
        verdict = prepared.decision.verdict
        if verdict is Verdict.DENY:
            row.state = State.DENIED
        elif verdict is Verdict.NEEDS_APPROVAL:
            row.state, row.approval_expire_time = State.PENDING_APPROVAL, now + self._approval_ttl_s
        else:
            assert prepared.tx is not None
            row.state, row.approval_expire_time = State.SUBMITTED, 0.0
            row.signature = str(prepared.tx.signatures[0])
            row.spec = row.spec | {
                "raw_tx": base64.b64encode(bytes(prepared.tx)).decode(),
                "last_valid": prepared.last_valid,
            }
        return row.state

    # ------------------------------------------------------------------ sending

    async def _send(self, wallet: WalletRow, row: ActionRow, wait_s: float) -> None:
        await self._audit(row, AuditKind.SUBMITTED, "service", signature=row.signature)
        rejected = await self._a.solana.send(base64.b64decode(row.spec["raw_tx"]))
        if rejected:
            await self._fail(row, "INSTRUCTION_ERROR", rejected)
            return
        await self._finish(wallet, row, await self._a.solana.confirm(row.signature, wait_s))

    async def _reconcile(self, wallet: WalletRow, row: ActionRow, wait_s: float) -> ActionRow:
        now = self._a.clock()
        if row.state is State.PENDING_APPROVAL and row.approval_expire_time <= now:
            await self._settle(
                row, State.REJECTED, AuditKind.REJECTED, "service", detail="approval expired"
            )
        if row.state is not State.SUBMITTED:
            return row
        outcome = await self._a.solana.status(row.signature)
        if outcome.state == "unknown":
            if not await self._a.solana.blockhash_valid(int(row.spec["last_valid"])):
                await self._fail(
                    row, "BLOCKHASH_EXPIRED", "not landed before its blockhash expired"
                )
                return row
            # The same signed bytes: landing twice is impossible, so re-sending is safe.
            rejected = await self._a.solana.send(base64.b64decode(row.spec["raw_tx"]))
            if rejected:
                await self._fail(row, "INSTRUCTION_ERROR", rejected)
                return row
            outcome = await self._a.solana.confirm(row.signature, wait_s)
        await self._finish(wallet, row, outcome)
        return row

    async def _finish(self, wallet: WalletRow, row: ActionRow, outcome: Outcome) -> None:
        if outcome.state == "failed":
            await self._fail(row, "INSTRUCTION_ERROR", outcome.error)
        elif outcome.state == "confirmed":
            receipt = await build_receipt(self._a.solana, wallet, row, self._a.clock())
            await self._a.store.add_receipt(receipt)
            row.receipt = f"wallets/{row.wallet_id}/receipts/{receipt.receipt_id}"
            await self._settle(
                row, State.CONFIRMED, AuditKind.CONFIRMED, "service", detail=row.receipt
            )

    async def _fail(self, row: ActionRow, reason: str, message: str) -> None:
        row.error_reason, row.error_message = reason, message[:500]
        await self._settle(row, State.FAILED, AuditKind.FAILED, "service", detail=reason)

    async def _settle(
        self, row: ActionRow, state: State, kind: AuditKind, actor: str, detail: str = ""
    ) -> None:
        row.state, row.update_time = state, self._a.clock()
        row.approval_expire_time = 0.0
        await self._a.store.put_action(row)
        await self._audit(row, kind, actor, detail=detail, signature=row.signature)

    async def _audit(self, row: ActionRow, kind: AuditKind, actor: str, **extra: Any) -> None:
        await self._a.audit(
            AuditRow(
                row.wallet_id,
                kind,
                self._a.clock(),
                actor,
                row.request_id,
                action_name(row),
                **extra,
            )
        )


async def _none() -> None:
    return None
