"""Request checks: every bad field becomes one BadRequest violation naming it."""

from __future__ import annotations

import math
import re
from typing import Any

from puppet.chain.v1 import chain_pb2 as c
from puppet_runtime import FieldChecks
from solders.pubkey import Pubkey

from puppet_chain.accounts import POLICY_FIELDS

WALLET_ID = re.compile(r"[a-z0-9_-]{1,64}")
AGENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ACTION_ID = re.compile(r"[0-9a-f]{22}")
MAX_REQUEST_ID = 128
MAX_NOTE = 500
MAX_SLIPPAGE_BPS = 5_000
MAX_AIRDROP = 10_000_000_000
MAX_U64 = 2**64 - 1


class Checks(FieldChecks):
    """This service's field checks."""

    def wallet_id(self, field: str, value: str) -> str:
        if not WALLET_ID.fullmatch(value):
            self.fail(field, f"must be 1-64 characters of [a-z0-9_-], got {value[:80]!r}")
        return value

    def wallet(self, field: str, name: str, *, any_ok: bool = False) -> str | None:
        """The {wallet} of wallets/{wallet}; None for wallets/- when any_ok."""
        if any_ok and name == "wallets/-":
            return None
        wallet = name.removeprefix("wallets/")
        if wallet == name or "/" in wallet:
            self.fail(field, f"must have the form wallets/{{wallet}}, got {name[:80]!r}")
            return ""
        return self.wallet_id(field, wallet)

    def child(
        self, field: str, name: str, collection: str, regex: re.Pattern[str]
    ) -> tuple[str, str]:
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "wallets" or parts[2] != collection:
            self.fail(field, f"must have the form wallets/{{wallet}}/{collection}/{{id}}")
            return "", ""
        if not WALLET_ID.fullmatch(parts[1]) or not regex.fullmatch(parts[3]):
            self.fail(field, f"has a malformed id: {name[:120]!r}")
        return parts[1], parts[3]

    def agent(self, field: str, name: str, *, required: bool = True) -> str:
        if not name and not required:
            return ""
        agent = name.removeprefix("agents/")
        if agent == name or not AGENT.fullmatch(agent):
            self.fail(field, f"must have the form agents/{{agent}}, got {name[:80]!r}")
        return name

    def requester(self, field: str, value: str) -> str:
        if value == "operator":
            return value
        return self.agent(field, value)

    def request_id(self, field: str, value: str, *, required: bool = False) -> str:
        if (required and not value) or len(value) > MAX_REQUEST_ID:
            self.fail(field, f"must be 1-{MAX_REQUEST_ID} characters, got {len(value)}")
        return value

    def address(self, field: str, value: str, *, required: bool = True) -> str:
        if not value and not required:
            return ""
        try:
            Pubkey.from_string(value)
        except ValueError:
            self.fail(field, f"must be a base58 public key, got {value[:80]!r}")
        return value

    def amount(self, field: str, value: int, high: int = MAX_U64) -> int:
        if not 0 < value <= high:
            self.fail(field, f"must be from 1 to {high}, got {value}")
        return value

    def slippage(self, field: str, value: int) -> int:
        if not 0 <= value <= MAX_SLIPPAGE_BPS:
            self.fail(field, f"must be from 0 to {MAX_SLIPPAGE_BPS} bps, got {value}")
        return value

    def non_negative(self, field: str, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            self.fail(field, f"must be a finite number >= 0, got {value!r}")
        return value

    def transfer(self, field: str, value: c.Transfer) -> dict[str, Any]:
        self.address(f"{field}.recipient", value.recipient)
        self.address(f"{field}.mint", value.mint, required=False)
        self.amount(f"{field}.amount", value.amount)
        return {"recipient": value.recipient, "mint": value.mint, "amount": value.amount}

    def swap(self, field: str, value: c.Swap) -> dict[str, Any]:
        self.address(f"{field}.input_mint", value.input_mint)
        self.address(f"{field}.output_mint", value.output_mint)
        if value.input_mint == value.output_mint:
            self.fail(f"{field}.output_mint", "must differ from input_mint")
        self.amount(f"{field}.amount", value.amount)
        self.slippage(f"{field}.slippage_bps", value.slippage_bps)
        return {
            "input_mint": value.input_mint,
            "output_mint": value.output_mint,
            "amount": value.amount,
            "slippage_bps": value.slippage_bps,
        }

    def policy_name(self, field: str, name: str) -> str:
        wallet_id = name.removeprefix("wallets/").removesuffix("/policy")
        if name != f"wallets/{wallet_id}/policy":
            self.fail(field, f"must have the form wallets/{{wallet}}/policy, got {name[:80]!r}")
            return ""
        return self.wallet_id(field, wallet_id)

    def policy(self, policy: c.Policy, paths: list[str]) -> list[str]:
        """The fields to change (every one for an empty mask), each checked."""
        paths = paths or list(POLICY_FIELDS)
        for path in paths:
            if path not in POLICY_FIELDS:
                self.fail("update_mask", f"unknown or read-only field {path[:80]!r}")
        for field in ("allowed_mints", "denied_mints", "allowed_recipients"):
            for i, value in enumerate(getattr(policy, field)):
                self.address(f"policy.{field}[{i}]", value)
        self.slippage("policy.max_slippage_bps", policy.max_slippage_bps)
        for field in ("max_trade_usd", "max_daily_usd", "approval_threshold_usd"):
            self.non_negative(f"policy.{field}", getattr(policy, field))
        for field in ("max_daily_actions", "min_seconds_between_actions"):
            self.non_negative(f"policy.{field}", getattr(policy, field))
        return [path for path in paths if path in POLICY_FIELDS]
