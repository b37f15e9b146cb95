"""Autonomous trading: legacy's trading check through chain; announced only from receipts."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from puppet.chain.v1 import chain_pb2
from puppet.llm.v1 import llm_pb2

from puppet_agent import trading
from puppet_agent.fleet import derived
from puppet_agent.runner.kit import Piece

log = logging.getLogger(__name__)


class Trades(Piece):
    """A persona's trading loop; each check decides, swaps through chain and announces."""

    async def loop(self, agent_id: str) -> None:
        while True:
            await asyncio.sleep(self._settings.trade_check_interval_s)
            try:
                outcome = await self.trade_once(agent_id)
                log.info("trading check of %s: %s", agent_id, outcome)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("trading check of %s failed: %s", agent_id, err)

    async def trade_once(self, agent_id: str) -> str:
        """One legacy trading check; returns what happened (for logs)."""
        chain = self._fleet.clients.chain
        record = await self._fleet.store.get_persona(agent_id)
        plan = trading.plan(record.config) if record is not None else None
        if chain is None or plan is None:
            return "not trading"
        state = await self._fleet.state(agent_id)
        saved = dict(state.state) if state is not None else {}
        now = self._clock()
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        day, _, count = saved.get("trades_day", "").partition(":")
        done_today = int(count) if day == today and count.isdigit() else 0
        last = float(saved["last_trade_time"]) if "last_trade_time" in saved else None
        if not plan.due(self._rng, now=now, last=last, today=done_today):
            return "not due"
        wallet = await trading.setup_wallet(
            chain,
            self._fleet.clients.memory,
            agent_id,
            record.config if record else {},
            applied=saved.get(trading.POLICY_STATE),
        )
        lamports = plan.draw_lamports(self._rng)
        if wallet is None or lamports <= 0:
            return "no wallet" if wallet is None else "nothing to trade"
        slot = str(int(now // self._settings.trade_check_interval_s))
        key = derived("trade", agent_id, slot)
        swap = chain_pb2.Swap(
            input_mint=trading.SOL_MINT,
            output_mint=self._rng.choice(plan.output_mints),
            amount=lamports,
        )
        action = await chain.swap(agent_id, wallet.name, swap, "autonomous trade", key)
        for _ in range(50):
            if action.state != chain_pb2.ACTION_STATE_SUBMITTED:
                break
            await asyncio.sleep(min(self._settings.tick_s, 1.0))
            action = await chain.action(action.name)
        if action.state != chain_pb2.ACTION_STATE_CONFIRMED or not action.receipt:
            return chain_pb2.ActionState.Name(action.state)
        receipt = await chain.receipt(action.receipt)
        memory = self._fleet.clients.memory
        await memory.set_state(agent_id, "last_trade_time", f"{now:.3f}")
        await memory.set_state(agent_id, "trades_day", f"{today}:{done_today + 1}")
        await self._fleet.announce_trade(agent_id, trade_facts(receipt, swap), key)
        return "confirmed"


def trade_facts(receipt: chain_pb2.Receipt, swap: chain_pb2.Swap) -> llm_pb2.TradeFacts:
    """The facts of a confirmed receipt, the only source of a trade announcement."""
    sold, bought = receipt.amount_in, receipt.amount_out
    return llm_pb2.TradeFacts(
        receipt=receipt.name,
        signature=receipt.signature,
        kind="swap",
        input_symbol=(sold.symbol or "SOL")[:16],
        input_amount=trading.decimal(sold.amount, sold.decimals),
        output_symbol=(bought.symbol or swap.output_mint[:6])[:16],
        output_amount=trading.decimal(bought.amount, bought.decimals),
        price=f"{receipt.realized_price:.6g}",
        confirm_time=receipt.confirm_time,
    )
