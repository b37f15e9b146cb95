"""ChainServicer: validates requests, calls Accounts and Actions, translates rows to protos."""

from __future__ import annotations

import hmac
from typing import Any

from puppet.chain.v1 import chain_pb2 as c
from puppet.chain.v1 import chain_service_pb2 as pb
from puppet.chain.v1 import chain_service_pb2_grpc as rpc
from puppet_runtime import Context, paging
from pydantic import SecretStr

from puppet_chain import convert, errors
from puppet_chain.accounts import Accounts
from puppet_chain.actions import Actions
from puppet_chain.store import AuditQuery, State
from puppet_chain.validation import ACTION_ID, MAX_AIRDROP, MAX_NOTE, Checks

RECEIPT_ID = ACTION_ID
MAX_PRICE_MINTS = 50
_MARGIN_S = 0.25


class ChainServicer(rpc.ChainServiceServicer):
    def __init__(
        self,
        accounts: Accounts,
        actions: Actions,
        *,
        admin_token: SecretStr | None,
        confirm_timeout_s: float,
    ) -> None:
        self._a = accounts
        self._actions = actions
        self._admin_token = admin_token
        self._confirm_timeout_s = confirm_timeout_s

    def _admin(self, context: Context) -> None:
        if self._admin_token is None:
            return
        expected = f"Bearer {self._admin_token.get_secret_value()}"
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and hmac.compare_digest(str(value), expected):
                return
        raise errors.admin_token_required()

    def _wait(self, context: Context) -> float:
        remaining: float | None = context.time_remaining()
        if remaining is None:
            return self._confirm_timeout_s
        return max(0.0, min(self._confirm_timeout_s, remaining - _MARGIN_S))

    def _wallet(self, checks: Checks, field: str, name: str) -> str:
        wallet_id = checks.wallet(field, name)
        checks.done()
        return wallet_id or ""

    async def ImportWallet(
        self, request: pb.ImportWalletRequest, context: Context
    ) -> pb.ImportWalletResponse:
        self._admin(context)
        checks = Checks()
        checks.wallet_id("wallet_id", request.wallet_id)
        checks.agent("agent", request.agent)
        checks.request_id("request_id", request.request_id)
        if not request.secret:
            checks.fail("secret", "is required")
        checks.done()
        row = await self._a.add(
            request.wallet_id, request.agent, request.secret, request.request_id, "operator"
        )
        return pb.ImportWalletResponse(wallet=convert.wallet(row, self._a.cluster))

    async def CreateWallet(
        self, request: pb.CreateWalletRequest, context: Context
    ) -> pb.CreateWalletResponse:
        checks = Checks()
        checks.wallet_id("wallet_id", request.wallet_id)
        checks.agent("agent", request.agent)
        checks.request_id("request_id", request.request_id)
        checks.done()
        row = await self._a.add(
            request.wallet_id, request.agent, None, request.request_id, request.agent
        )
        return pb.CreateWalletResponse(wallet=convert.wallet(row, self._a.cluster))

    async def GetWallet(
        self, request: pb.GetWalletRequest, context: Context
    ) -> pb.GetWalletResponse:
        wallet_id = self._wallet(Checks(), "name", request.name)
        row = await self._a.wallet(wallet_id)
        return pb.GetWalletResponse(wallet=convert.wallet(row, self._a.cluster))

    async def ListWallets(
        self, request: pb.ListWalletsRequest, context: Context
    ) -> pb.ListWalletsResponse:
        checks = Checks()
        agent = checks.agent("agent", request.agent, required=False)
        size = checks.page_size("page_size", request.page_size)
        query = f"wallets|{agent}"
        after = checks.page_token("page_token", query, request.page_token) or ""
        checks.done()
        rows = await self._a.store.list_wallets(agent, str(after), size + 1)
        token = paging.encode(query, rows[size - 1].wallet_id) if len(rows) > size else ""
        wallets = [convert.wallet(row, self._a.cluster) for row in rows[:size]]
        return pb.ListWalletsResponse(wallets=wallets, next_page_token=token)

    async def RequestAirdrop(
        self, request: pb.RequestAirdropRequest, context: Context
    ) -> pb.RequestAirdropResponse:
        checks = Checks()
        wallet_id = checks.wallet("wallet", request.wallet) or ""
        checks.amount("lamports", request.lamports, MAX_AIRDROP)
        checks.request_id("request_id", request.request_id)
        checks.done()
        signature, lamports = await self._a.airdrop(wallet_id, request.lamports, request.request_id)
        return pb.RequestAirdropResponse(signature=signature, lamports=lamports)

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        wallet_id = self._wallet(Checks(), "wallet", request.wallet)
        valued = await self._a.valued_balance(await self._a.wallet(wallet_id))
        return pb.GetBalanceResponse(balance=convert.balance(wallet_id, valued, self._a.symbols))

    async def GetPrices(
        self, request: pb.GetPricesRequest, context: Context
    ) -> pb.GetPricesResponse:
        checks = Checks()
        if not 1 <= len(request.mints) <= MAX_PRICE_MINTS:
            checks.fail("mints", f"must hold 1-{MAX_PRICE_MINTS} mints, got {len(request.mints)}")
        for i, mint in enumerate(request.mints):
            checks.address(f"mints[{i}]", mint)
        checks.done()
        found = await self._a.prices(list(dict.fromkeys(request.mints)))
        prices = [
            c.Price(
                mint=mint,
                symbol=self._a.symbols.get(mint, ""),
                usd=found[mint][0],
                source=self._a.price_source,
                update_time=convert.ts(found[mint][1]),
            )
            for mint in request.mints
            if mint in found
        ]
        return pb.GetPricesResponse(prices=prices)

    async def GetQuote(self, request: pb.GetQuoteRequest, context: Context) -> pb.GetQuoteResponse:
        checks = Checks()
        checks.address("input_mint", request.input_mint)
        checks.address("output_mint", request.output_mint)
        if request.input_mint == request.output_mint:
            checks.fail("output_mint", "must differ from input_mint")
        checks.amount("amount", request.amount)
        if not 0 <= request.slippage_bps <= 5_000:
            checks.fail("slippage_bps", f"must be from 0 to 5000, got {request.slippage_bps}")
        checks.done()
        quote = await self._a.jupiter.quote(
            request.input_mint, request.output_mint, request.amount, request.slippage_bps or 50
        )
        return pb.GetQuoteResponse(quote=convert.quote(quote))

    async def EvaluatePolicy(
        self, request: pb.EvaluatePolicyRequest, context: Context
    ) -> pb.EvaluatePolicyResponse:
        checks = Checks()
        wallet_id = checks.wallet("wallet", request.wallet) or ""
        which = request.WhichOneof("proposal")
        if which == "transfer":
            kind, spec = "transfer", checks.transfer("transfer", request.transfer)
        elif which == "swap":
            kind, spec = "swap", checks.swap("swap", request.swap)
        else:
            checks.fail("proposal", "a transfer or a swap is required")
        checks.done()
        decision = await self._actions.evaluate(wallet_id, kind, spec)
        return pb.EvaluatePolicyResponse(decision=convert.decision(decision))

    async def _create(
        self,
        checks: Checks,
        request: pb.CreateTransferRequest | pb.CreateSwapRequest,
        kind: str,
        spec: dict[str, Any],
        context: Context,
    ) -> c.Action:
        wallet_id = checks.wallet("parent", request.parent) or ""
        checks.requester("requester", request.requester)
        checks.text("memo", request.memo, high=MAX_NOTE)
        checks.request_id("request_id", request.request_id, required=True)
        checks.done()
        if kind == "transfer" and spec["recipient"] == (await self._a.wallet(wallet_id)).address:
            raise errors.invalid_field("transfer.recipient", "must differ from the wallet")
        owner = (await self._a.wallet(wallet_id)).agent
        if request.requester not in ("operator", owner):
            raise errors.invalid_field("requester", "must be operator or the wallet's agent")
        row = await self._actions.request(
            wallet_id,
            kind,
            spec,
            request.requester,
            request.memo,
            request.request_id,
            self._wait(context),
        )
        return convert.action(row)

    async def CreateTransfer(
        self, request: pb.CreateTransferRequest, context: Context
    ) -> pb.CreateTransferResponse:
        checks = Checks()
        spec = checks.transfer("transfer", request.transfer)
        action = await self._create(checks, request, "transfer", spec, context)
        return pb.CreateTransferResponse(action=action)

    async def CreateSwap(
        self, request: pb.CreateSwapRequest, context: Context
    ) -> pb.CreateSwapResponse:
        checks = Checks()
        spec = checks.swap("swap", request.swap)
        action = await self._create(checks, request, "swap", spec, context)
        return pb.CreateSwapResponse(action=action)

    def _action_name(self, name: str) -> tuple[str, str]:
        checks = Checks()
        wallet_id, action_id = checks.child("name", name, "actions", ACTION_ID)
        checks.done()
        return wallet_id, action_id

    async def GetAction(
        self, request: pb.GetActionRequest, context: Context
    ) -> pb.GetActionResponse:
        wallet_id, action_id = self._action_name(request.name)
        row = await self._actions.get(wallet_id, action_id)
        return pb.GetActionResponse(action=convert.action(row))

    async def ListActions(
        self, request: pb.ListActionsRequest, context: Context
    ) -> pb.ListActionsResponse:
        checks = Checks()
        wallet_id = checks.wallet("parent", request.parent, any_ok=True)
        size = checks.page_size("page_size", request.page_size)
        state = State(request.state) if request.state in State._value2member_map_ else None
        if request.state and state is None:
            checks.fail("state", f"is not an action state: {request.state}")
        query = f"actions|{request.parent}|{request.state}"
        before = checks.page_token("page_token", query, request.page_token) or ""
        checks.done()
        if wallet_id is not None:
            await self._a.wallet(wallet_id)
        rows = await self._a.store.list_actions(wallet_id, state, str(before), size + 1)
        token = paging.encode(query, rows[size - 1].action_id) if len(rows) > size else ""
        actions = [convert.action(row) for row in rows[:size]]
        return pb.ListActionsResponse(actions=actions, next_page_token=token)

    async def ApproveAction(
        self, request: pb.ApproveActionRequest, context: Context
    ) -> pb.ApproveActionResponse:
        self._admin(context)
        checks = Checks()
        wallet_id, action_id = checks.child("name", request.name, "actions", ACTION_ID)
        checks.text("note", request.note, high=MAX_NOTE)
        checks.request_id("request_id", request.request_id)
        checks.done()
        row = await self._actions.approve(wallet_id, action_id, request.note, self._wait(context))
        return pb.ApproveActionResponse(action=convert.action(row))

    async def RejectAction(
        self, request: pb.RejectActionRequest, context: Context
    ) -> pb.RejectActionResponse:
        self._admin(context)
        checks = Checks()
        wallet_id, action_id = checks.child("name", request.name, "actions", ACTION_ID)
        checks.text("note", request.note, high=MAX_NOTE)
        checks.request_id("request_id", request.request_id)
        checks.done()
        row = await self._actions.reject(wallet_id, action_id, request.note)
        return pb.RejectActionResponse(action=convert.action(row))

    async def GetPolicy(
        self, request: pb.GetPolicyRequest, context: Context
    ) -> pb.GetPolicyResponse:
        checks = Checks()
        wallet_id = checks.policy_name("name", request.name)
        checks.done()
        await self._a.wallet(wallet_id)
        return pb.GetPolicyResponse(
            policy=convert.policy(wallet_id, await self._a.rules(wallet_id))
        )

    async def UpdatePolicy(
        self, request: pb.UpdatePolicyRequest, context: Context
    ) -> pb.UpdatePolicyResponse:
        self._admin(context)
        checks = Checks()
        policy = request.policy
        wallet_id = checks.policy_name("policy.name", policy.name)
        paths = checks.policy(policy, list(request.update_mask.paths))
        checks.request_id("request_id", request.request_id)
        checks.done()
        changes = convert.policy_changes(policy, paths)
        rules = await self._a.update_rules(wallet_id, changes, request.request_id, "operator")
        return pb.UpdatePolicyResponse(policy=convert.policy(wallet_id, rules))

    async def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: Context
    ) -> pb.ListAuditEntriesResponse:
        checks = Checks()
        wallet_id = checks.wallet("parent", request.parent, any_ok=True)
        size = checks.page_size("page_size", request.page_size)
        if request.action:
            checks.child("action", request.action, "actions", ACTION_ID)
        start = convert.seconds(request.start_time) if request.HasField("start_time") else None
        end = convert.seconds(request.end_time) if request.HasField("end_time") else None
        query = f"audit|{request.parent}|{start}|{end}|{request.action}"
        after = checks.page_token("page_token", query, request.page_token) or 0
        checks.done()
        if wallet_id is not None:
            await self._a.wallet(wallet_id)
        rows = await self._a.store.list_audit(
            AuditQuery(wallet_id, start, end, request.action), int(after), size + 1
        )
        token = paging.encode(query, rows[size - 1].seq) if len(rows) > size else ""
        entries = [convert.audit(row) for row in rows[:size]]
        return pb.ListAuditEntriesResponse(audit_entries=entries, next_page_token=token)

    async def GetReceipt(
        self, request: pb.GetReceiptRequest, context: Context
    ) -> pb.GetReceiptResponse:
        checks = Checks()
        wallet_id, receipt_id = checks.child("name", request.name, "receipts", RECEIPT_ID)
        checks.done()
        row = await self._a.store.get_receipt(wallet_id, receipt_id)
        if row is None:
            raise errors.receipt_not_found(request.name)
        return pb.GetReceiptResponse(receipt=convert.receipt(row, self._a.symbols))

    async def ListReceipts(
        self, request: pb.ListReceiptsRequest, context: Context
    ) -> pb.ListReceiptsResponse:
        checks = Checks()
        wallet_id = checks.wallet("parent", request.parent, any_ok=True)
        size = checks.page_size("page_size", request.page_size)
        query = f"receipts|{request.parent}"
        before = checks.page_token("page_token", query, request.page_token) or ""
        checks.done()
        if wallet_id is not None:
            await self._a.wallet(wallet_id)
        rows = await self._a.store.list_receipts(wallet_id, str(before), size + 1)
        token = paging.encode(query, rows[size - 1].receipt_id) if len(rows) > size else ""
        receipts = [convert.receipt(row, self._a.symbols) for row in rows[:size]]
        return pb.ListReceiptsResponse(receipts=receipts, next_page_token=token)
