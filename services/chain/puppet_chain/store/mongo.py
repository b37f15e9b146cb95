"""MongoDB adapter of the chain store: AsyncMongoClient, unique indexes guard idempotency."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from puppet_chain.store import (
    ActionRow,
    AuditQuery,
    AuditRow,
    Doc,
    ReceiptRow,
    Spending,
    State,
    WalletRow,
    action_doc,
    action_row,
    audit_doc,
    audit_row,
    receipt_doc,
    receipt_row,
    spending_of,
)


def _strip(doc: Doc) -> Doc:
    return {key: value for key, value in doc.items() if key != "_id"}


class MongoStore:
    """The chain store in one MongoDB database.

    Collections: wallets, policies, actions, audit, receipts, requests and counters.
    """

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(uri)
        self._db = self._client[database]

    def _c(self, name: str) -> AsyncCollection[Doc]:
        return self._db[name]

    async def open(self) -> None:
        await self._c("wallets").create_index([("address", ASCENDING)], unique=True)
        await self._c("actions").create_index(
            [("wallet_id", ASCENDING), ("request_id", ASCENDING)], unique=True
        )
        await self._c("actions").create_index([("action_id", DESCENDING)])
        await self._c("audit").create_index([("seq", ASCENDING)])

    async def close(self) -> None:
        await self._client.close()

    async def add_wallet(self, wallet: WalletRow) -> bool:
        doc = {
            "_id": wallet.wallet_id,
            "agent": wallet.agent,
            "address": wallet.address,
            "sealed_key": wallet.sealed_key,
            "create_time": wallet.create_time,
        }
        try:
            await self._c("wallets").insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    @staticmethod
    def _wallet(doc: Doc) -> WalletRow:
        key = bytes(doc["sealed_key"])
        return WalletRow(doc["_id"], doc["agent"], doc["address"], key, doc["create_time"])

    async def get_wallet(self, wallet_id: str) -> WalletRow | None:
        doc = await self._c("wallets").find_one({"_id": wallet_id})
        return None if doc is None else self._wallet(doc)

    async def list_wallets(self, agent: str, after: str, limit: int) -> list[WalletRow]:
        query: Doc = {"_id": {"$gt": after}}
        if agent:
            query["agent"] = agent
        cursor = self._c("wallets").find(query).sort("_id", ASCENDING).limit(limit)
        return [self._wallet(doc) async for doc in cursor]

    async def get_policy(self, wallet_id: str) -> Doc | None:
        doc = await self._c("policies").find_one({"_id": wallet_id})
        return None if doc is None else dict(doc["body"])

    async def put_policy(self, wallet_id: str, policy: Doc) -> None:
        await self._c("policies").replace_one(
            {"_id": wallet_id}, {"_id": wallet_id, "body": policy}, upsert=True
        )

    async def add_action(self, action: ActionRow) -> ActionRow:
        doc = action_doc(action) | {"_id": f"{action.wallet_id}/{action.action_id}"}
        try:
            await self._c("actions").insert_one(doc)
        except DuplicateKeyError:
            found = await self._c("actions").find_one(
                {"wallet_id": action.wallet_id, "request_id": action.request_id}
            )
            if found is None:
                raise
            return action_row(_strip(found))
        return action

    async def find_action(self, wallet_id: str, request_id: str) -> ActionRow | None:
        doc = await self._c("actions").find_one({"wallet_id": wallet_id, "request_id": request_id})
        return None if doc is None else action_row(_strip(doc))

    async def put_action(self, action: ActionRow) -> None:
        key = f"{action.wallet_id}/{action.action_id}"
        await self._c("actions").replace_one({"_id": key}, action_doc(action) | {"_id": key})

    async def get_action(self, wallet_id: str, action_id: str) -> ActionRow | None:
        doc = await self._c("actions").find_one({"_id": f"{wallet_id}/{action_id}"})
        return None if doc is None else action_row(_strip(doc))

    async def list_actions(
        self, wallet_id: str | None, state: State | None, before: str, limit: int
    ) -> list[ActionRow]:
        query: Doc = {}
        if wallet_id is not None:
            query["wallet_id"] = wallet_id
        if state is not None:
            query["state"] = int(state)
        if before:
            query["action_id"] = {"$lt": before}
        cursor = self._c("actions").find(query).sort("action_id", DESCENDING).limit(limit)
        return [action_row(_strip(doc)) async for doc in cursor]

    async def actions_since(self, wallet_id: str, since: float) -> list[ActionRow]:
        query = {"wallet_id": wallet_id, "create_time": {"$gte": since}}
        cursor = self._c("actions").find(query).sort("action_id", ASCENDING)
        return [action_row(_strip(doc)) async for doc in cursor]

    async def spending(self, wallet_id: str, since: float, exclude: str) -> Spending:
        return spending_of(await self.actions_since(wallet_id, since), exclude)

    async def append_audit(self, entry: AuditRow) -> AuditRow:
        counter = await self._c("counters").find_one_and_update(
            {"_id": "audit"},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None
        doc = audit_doc(entry) | {"seq": int(counter["value"])}
        await self._c("audit").insert_one(doc | {"_id": doc["seq"]})
        return audit_row(doc)

    async def list_audit(self, query: AuditQuery, after: int, limit: int) -> list[AuditRow]:
        find: Doc = {"seq": {"$gt": after}}
        if query.wallet_id is not None:
            find["wallet_id"] = query.wallet_id
        if query.action:
            find["action"] = query.action
        bounds: dict[str, Any] = {}
        if query.start_time is not None:
            bounds["$gte"] = query.start_time
        if query.end_time is not None:
            bounds["$lt"] = query.end_time
        if bounds:
            find["time"] = bounds
        cursor = self._c("audit").find(find).sort("seq", ASCENDING).limit(limit)
        return [audit_row(_strip(doc)) async for doc in cursor]

    async def add_receipt(self, receipt: ReceiptRow) -> None:
        key = f"{receipt.wallet_id}/{receipt.receipt_id}"
        doc = receipt_doc(receipt) | {"_id": key}
        await self._c("receipts").replace_one({"_id": key}, doc, upsert=True)

    async def get_receipt(self, wallet_id: str, receipt_id: str) -> ReceiptRow | None:
        doc = await self._c("receipts").find_one({"_id": f"{wallet_id}/{receipt_id}"})
        return None if doc is None else receipt_row(_strip(doc))

    async def list_receipts(
        self, wallet_id: str | None, before: str, limit: int
    ) -> list[ReceiptRow]:
        query: Doc = {}
        if wallet_id is not None:
            query["wallet_id"] = wallet_id
        if before:
            query["receipt_id"] = {"$lt": before}
        cursor = self._c("receipts").find(query).sort("receipt_id", DESCENDING).limit(limit)
        return [receipt_row(_strip(doc)) async for doc in cursor]

    async def acquire(self, key: str, owner: str, now: float, ttl_s: float) -> bool:
        leases, until = self._c("leases"), now + ttl_s
        try:
            await leases.insert_one({"_id": key, "owner": owner, "until": until})
            return True
        except DuplicateKeyError:
            pass
        for taken in ({"until": {"$lte": now}}, {"owner": owner}):
            found = await leases.find_one_and_update(
                {"_id": key, **taken}, {"$set": {"owner": owner, "until": until}}
            )
            if found is not None:
                return True
        return False

    async def release(self, key: str, owner: str) -> None:
        await self._c("leases").delete_one({"_id": key, "owner": owner})

    async def recall(self, key: str) -> tuple[str, str] | None:
        doc = await self._c("requests").find_one({"_id": key})
        return None if doc is None else (str(doc["fingerprint"]), str(doc["result"]))

    async def remember(self, key: str, fingerprint: str, result: str) -> tuple[str, str]:
        try:
            await self._c("requests").insert_one(
                {"_id": key, "fingerprint": fingerprint, "result": result}
            )
        except DuplicateKeyError:
            stored = await self.recall(key)
            assert stored is not None
            return stored
        return fingerprint, result
