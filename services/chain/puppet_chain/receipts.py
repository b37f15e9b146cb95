"""Receipts: what a confirmed transaction did, from its balance changes (the announceable facts)."""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey

from puppet_chain.jupiter import Quote
from puppet_chain.policy import WSOL
from puppet_chain.solana import Solana
from puppet_chain.store import ActionRow, ReceiptRow, WalletRow


def action_name(row: ActionRow) -> str:
    return f"wallets/{row.wallet_id}/actions/{row.action_id}"


async def build_receipt(
    solana: Solana, wallet: WalletRow, row: ActionRow, now: float
) -> ReceiptRow:
    """The receipt of a confirmed action; rent of token accounts the wallet created is not
    counted as spent (it is a deposit, not a price)."""
    owner = Pubkey.from_string(wallet.address)
    facts = await solana.facts(row.signature, owner)
    rent = await solana.token_account_rent() if facts.created_token_accounts else 0
    sol_change = facts.sol_delta + rent * facts.created_token_accounts

    def side(mint: str, sign: int) -> dict[str, Any]:
        if mint in ("", WSOL):
            return {"mint": WSOL, "amount": max(sign * sol_change, 0), "decimals": 9}
        gained, decimals = facts.token_deltas.get(mint, (0, 0))
        return {"mint": mint, "amount": max(sign * gained, 0), "decimals": decimals}

    if row.kind == "transfer":
        amount_in, amount_out, price = side(row.spec["mint"], -1), {}, 0.0
        recipient = str(row.spec["recipient"])
    else:
        amount_in = side(row.spec["input_mint"], -1)
        amount_out, recipient = side(row.spec["output_mint"], 1), ""
        ui_in = amount_in["amount"] / 10 ** amount_in["decimals"]
        ui_out = amount_out["amount"] / 10 ** amount_out["decimals"]
        price = ui_out / ui_in if ui_in else 0.0
    return ReceiptRow(
        row.wallet_id,
        row.action_id,
        action_name(row),
        row.signature,
        facts.slot,
        facts.block_time or now,
        amount_in,
        amount_out,
        price,
        facts.fee,
        recipient,
    )


def quote_doc(quote: Quote) -> dict[str, Any]:
    return {
        "input_mint": quote.input_mint,
        "output_mint": quote.output_mint,
        "in_amount": quote.in_amount,
        "out_amount": quote.out_amount,
        "min_out_amount": quote.min_out_amount,
        "slippage_bps": quote.slippage_bps,
        "price_impact": quote.price_impact,
        "route": quote.route,
        "expire_time": quote.expire_time,
    }
