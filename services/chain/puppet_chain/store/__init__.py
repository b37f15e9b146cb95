"""The chain store port: wallets (sealed keys), policies, actions, audit entries and receipts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

Doc = dict[str, Any]


class State(IntEnum):
    """Numbered as puppet.chain.v1.ActionState."""

    DENIED = 1
    PENDING_APPROVAL = 2
    SUBMITTED = 3
    CONFIRMED = 4
    FAILED = 5
    REJECTED = 6


TERMINAL = frozenset({State.DENIED, State.CONFIRMED, State.FAILED, State.REJECTED})
SPENDING = frozenset({State.PENDING_APPROVAL, State.SUBMITTED, State.CONFIRMED})
"""States that count against the daily caps."""


class AuditKind(IntEnum):
    """Numbered as puppet.chain.v1.AuditKind."""

    WALLET_ADDED = 1
    POLICY_UPDATED = 2
    REQUESTED = 3
    DECIDED = 4
    APPROVED = 5
    REJECTED = 6
    SUBMITTED = 7
    CONFIRMED = 8
    FAILED = 9


def new_id(now: float) -> str:
    """A sortable id: microseconds since the epoch in hex, then 32 random bits."""
    return f"{int(now * 1_000_000):014x}{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class WalletRow:
    wallet_id: str
    agent: str
    address: str
    sealed_key: bytes
    create_time: float


@dataclass(slots=True)
class ActionRow:
    """One action; kind is "transfer" or "swap" and spec holds its fields (JSON)."""

    wallet_id: str
    action_id: str
    request_id: str
    fingerprint: str
    kind: str
    spec: Doc
    requester: str
    memo: str
    create_time: float
    update_time: float
    state: State = State.DENIED
    decision: Doc = field(default_factory=dict)
    signature: str = ""
    receipt: str = ""
    error_reason: str = ""
    error_message: str = ""
    approval_expire_time: float = 0.0
    quote: Doc = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """An audit entry; seq is assigned by the store (increasing over the whole store)."""

    wallet_id: str
    kind: AuditKind
    time: float
    actor: str
    request_id: str = ""
    action: str = ""
    decision: Doc = field(default_factory=dict)
    signature: str = ""
    detail: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    wallet_id: str
    receipt_id: str
    action: str
    signature: str
    slot: int
    confirm_time: float
    amount_in: Doc
    amount_out: Doc
    realized_price: float
    fee_lamports: int
    recipient: str


@dataclass(frozen=True, slots=True)
class Spending:
    lamports: int = 0
    usd: float = 0.0
    actions: int = 0
    last_time: float | None = None


def spending_of(rows: list[ActionRow], exclude: str) -> Spending:
    counted = [r for r in rows if r.state in SPENDING and r.action_id != exclude]
    return Spending(
        sum(int(r.decision.get("value_lamports", 0)) for r in counted),
        sum(float(r.decision.get("value_usd", 0.0)) for r in counted),
        len(counted),
        max((r.create_time for r in counted), default=None),
    )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    wallet_id: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    action: str = ""


class ChainStore(Protocol):
    """Adapters never raise transport errors upward for a missing row: they return None."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def add_wallet(self, wallet: WalletRow) -> bool:
        """False (and nothing written) when the wallet id or the address is already held."""
        ...

    async def get_wallet(self, wallet_id: str) -> WalletRow | None: ...
    async def list_wallets(self, agent: str, after: str, limit: int) -> list[WalletRow]: ...
    async def get_policy(self, wallet_id: str) -> Doc | None: ...
    async def put_policy(self, wallet_id: str, policy: Doc) -> None: ...

    async def add_action(self, action: ActionRow) -> ActionRow:
        """Insert; when (wallet_id, request_id) exists, return that row and write nothing."""
        ...

    async def find_action(self, wallet_id: str, request_id: str) -> ActionRow | None: ...
    async def put_action(self, action: ActionRow) -> None: ...
    async def get_action(self, wallet_id: str, action_id: str) -> ActionRow | None: ...

    async def list_actions(
        self, wallet_id: str | None, state: State | None, before: str, limit: int
    ) -> list[ActionRow]:
        """Newest first; before is an action id (exclusive), empty for the first page."""
        ...

    async def actions_since(self, wallet_id: str, since: float) -> list[ActionRow]: ...

    async def spending(self, wallet_id: str, since: float, exclude: str) -> Spending:
        """What the wallet's SPENDING actions created at or after since add up to."""
        ...

    async def append_audit(self, entry: AuditRow) -> AuditRow: ...
    async def list_audit(self, query: AuditQuery, after: int, limit: int) -> list[AuditRow]: ...
    async def add_receipt(self, receipt: ReceiptRow) -> None: ...
    async def get_receipt(self, wallet_id: str, receipt_id: str) -> ReceiptRow | None: ...

    async def list_receipts(
        self, wallet_id: str | None, before: str, limit: int
    ) -> list[ReceiptRow]: ...

    async def acquire(self, key: str, owner: str, now: float, ttl_s: float) -> bool:
        """Take or extend the lease on key until now + ttl_s; False while another owner holds it."""
        ...

    async def release(self, key: str, owner: str) -> None: ...

    async def recall(self, key: str) -> tuple[str, str] | None:
        """The (fingerprint, result) remembered under key, if any."""
        ...

    async def remember(self, key: str, fingerprint: str, result: str) -> tuple[str, str]:
        """Store (fingerprint, result) under key unless present; return what is stored."""
        ...


def action_doc(action: ActionRow) -> Doc:
    return {
        "wallet_id": action.wallet_id,
        "action_id": action.action_id,
        "request_id": action.request_id,
        "fingerprint": action.fingerprint,
        "kind": action.kind,
        "spec": action.spec,
        "requester": action.requester,
        "memo": action.memo,
        "create_time": action.create_time,
        "update_time": action.update_time,
        "state": int(action.state),
        "decision": action.decision,
        "signature": action.signature,
        "receipt": action.receipt,
        "error_reason": action.error_reason,
        "error_message": action.error_message,
        "approval_expire_time": action.approval_expire_time,
        "quote": action.quote,
    }


def action_row(doc: Doc) -> ActionRow:
    values = {name: doc[name] for name in ActionRow.__dataclass_fields__}
    values["state"] = State(values["state"])
    return ActionRow(**values)


def audit_doc(entry: AuditRow) -> Doc:
    return {name: getattr(entry, name) for name in AuditRow.__dataclass_fields__} | {
        "kind": int(entry.kind)
    }


def audit_row(doc: Doc) -> AuditRow:
    values = {name: doc[name] for name in AuditRow.__dataclass_fields__}
    values["kind"] = AuditKind(values["kind"])
    return AuditRow(**values)


def receipt_doc(receipt: ReceiptRow) -> Doc:
    return {name: getattr(receipt, name) for name in ReceiptRow.__dataclass_fields__}


def receipt_row(doc: Doc) -> ReceiptRow:
    return ReceiptRow(**{name: doc[name] for name in ReceiptRow.__dataclass_fields__})
