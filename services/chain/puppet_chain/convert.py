"""Rows and domain values to protos (and the policy proto to rule changes)."""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2
from puppet.chain.v1 import chain_pb2 as c

from puppet_chain.accounts import POLICY_FIELDS, Valued
from puppet_chain.jupiter import Quote
from puppet_chain.policy import Decision, Rules
from puppet_chain.store import ActionRow, AuditRow, ReceiptRow, WalletRow

REPEATED = ("allowed_mints", "denied_mints", "allowed_recipients")


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def wallet(row: WalletRow, cluster: str) -> c.Wallet:
    return c.Wallet(
        name=f"wallets/{row.wallet_id}",
        agent=row.agent,
        address=row.address,
        cluster=cluster,
        create_time=ts(row.create_time),
    )


def decision(value: Decision) -> c.Decision:
    return c.Decision(
        verdict=c.Verdict.ValueType(value.verdict),
        reasons=[
            c.DecisionReason(
                rule=c.PolicyRule.ValueType(r.rule),
                message=r.message,
                limit=r.limit,
                observed=r.observed,
            )
            for r in value.reasons
        ],
        value_lamports=value.value_lamports,
        value_usd=value.value_usd,
        decide_time=ts(value.decide_time),
    )


def quote(value: Quote) -> c.Quote:
    return quote_from_doc(
        {
            "input_mint": value.input_mint,
            "output_mint": value.output_mint,
            "in_amount": value.in_amount,
            "out_amount": value.out_amount,
            "min_out_amount": value.min_out_amount,
            "slippage_bps": value.slippage_bps,
            "price_impact": value.price_impact,
            "route": value.route,
            "expire_time": value.expire_time,
        }
    )


def quote_from_doc(doc: dict[str, Any]) -> c.Quote:
    fields = {k: v for k, v in doc.items() if k != "expire_time"}
    return c.Quote(**fields, expire_time=ts(doc["expire_time"]))


def action(row: ActionRow) -> c.Action:
    out = c.Action(
        name=f"wallets/{row.wallet_id}/actions/{row.action_id}",
        request_id=row.request_id,
        state=c.ActionState.ValueType(row.state),
        signature=row.signature,
        receipt=row.receipt,
        error_reason=row.error_reason,
        error_message=row.error_message,
        requester=row.requester,
        memo=row.memo,
        create_time=ts(row.create_time),
        update_time=ts(row.update_time),
    )
    if row.decision:
        out.decision.CopyFrom(decision(Decision.from_json(row.decision)))
    if row.approval_expire_time:
        out.approval_expire_time.CopyFrom(ts(row.approval_expire_time))
    spec = row.spec
    if row.kind == "transfer":
        out.transfer.CopyFrom(
            c.Transfer(recipient=spec["recipient"], mint=spec["mint"], amount=spec["amount"])
        )
    else:
        out.swap.CopyFrom(
            c.Swap(
                input_mint=spec["input_mint"],
                output_mint=spec["output_mint"],
                amount=spec["amount"],
                slippage_bps=spec["slippage_bps"],
            )
        )
        if row.quote:
            out.swap.quote.CopyFrom(quote_from_doc(row.quote))
    return out


def token_amount(doc: dict[str, Any], symbols: dict[str, str]) -> c.TokenAmount:
    return c.TokenAmount(
        mint=doc["mint"],
        symbol=symbols.get(doc["mint"], ""),
        amount=doc["amount"],
        decimals=doc["decimals"],
    )


def receipt(row: ReceiptRow, symbols: dict[str, str]) -> c.Receipt:
    out = c.Receipt(
        name=f"wallets/{row.wallet_id}/receipts/{row.receipt_id}",
        action=row.action,
        signature=row.signature,
        slot=row.slot,
        confirm_time=ts(row.confirm_time),
        amount_in=token_amount(row.amount_in, symbols),
        realized_price=row.realized_price,
        fee_lamports=row.fee_lamports,
        recipient=row.recipient,
    )
    if row.amount_out:
        out.amount_out.CopyFrom(token_amount(row.amount_out, symbols))
    return out


def audit(row: AuditRow) -> c.AuditEntry:
    out = c.AuditEntry(
        name=f"wallets/{row.wallet_id}/auditEntries/{row.seq:012d}",
        kind=c.AuditKind.ValueType(row.kind),
        time=ts(row.time),
        action=row.action,
        request_id=row.request_id,
        actor=row.actor,
        signature=row.signature,
        detail=row.detail,
    )
    if row.decision:
        out.decision.CopyFrom(decision(Decision.from_json(row.decision)))
    return out


def policy(wallet_id: str, rules: Rules) -> c.Policy:
    values: dict[str, Any] = {name: getattr(rules, name) for name in POLICY_FIELDS}
    for name in REPEATED:
        values[name] = list(values[name])
    out = c.Policy(name=f"wallets/{wallet_id}/policy", **values)
    if rules.update_time:
        out.update_time.CopyFrom(ts(rules.update_time))
    return out


def policy_changes(value: c.Policy, paths: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in paths:
        field = getattr(value, name)
        changes[name] = tuple(field) if name in REPEATED else field
    return changes


def balance(wallet_id: str, value: Valued, symbols: dict[str, str]) -> c.Balance:
    return c.Balance(
        wallet=f"wallets/{wallet_id}",
        lamports=value.lamports,
        slot=value.slot,
        total_value_usd=value.total_usd,
        tokens=[
            c.TokenBalance(
                mint=h.mint,
                symbol=symbols.get(h.mint, ""),
                amount=h.amount,
                decimals=h.decimals,
                value_usd=usd,
            )
            for h, usd in value.tokens
        ],
    )
