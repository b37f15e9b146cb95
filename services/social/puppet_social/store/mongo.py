"""MongoDB adapter of the outbox store: AsyncMongoClient, single-document atomic updates."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, fields
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from puppet_social.store import (
    NO_CHANGE,
    Action,
    Change,
    NewItem,
    OutboxItem,
    RateWindow,
    State,
    check_transition,
    created_item,
)

Doc = dict[str, Any]
_WINDOW_FIELDS = tuple(f.name for f in fields(RateWindow))


def _doc(item: OutboxItem) -> Doc:
    doc = asdict(item)
    doc["_id"] = doc.pop("id")
    doc["action"] = str(item.action)
    doc["state"] = str(item.state)
    return doc


def _item(doc: Doc) -> OutboxItem:
    values: Doc = {f.name: doc["_id" if f.name == "id" else f.name] for f in fields(OutboxItem)}
    values["action"] = Action(values["action"])
    values["state"] = State(values["state"])
    return OutboxItem(**values)


class MongoStore:
    """The outbox store in one MongoDB database (collections outbox and rate_windows)."""

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, tz_aware=True)
        self._db = self._client[database]

    @property
    def _outbox(self) -> AsyncCollection[Doc]:
        return self._db["outbox"]

    @property
    def _windows(self) -> AsyncCollection[Doc]:
        return self._db["rate_windows"]

    async def open(self) -> None:
        await self._outbox.create_index(
            [("account", ASCENDING), ("request_id", ASCENDING)], unique=True
        )
        await self._outbox.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])

    async def close(self) -> None:
        await self._client.close()

    async def create(self, new: NewItem, now: float) -> tuple[OutboxItem, bool]:
        item = created_item(new, now)
        try:
            await self._outbox.insert_one(_doc(item))
        except DuplicateKeyError:
            found = await self._outbox.find_one(
                {"account": new.account, "request_id": new.request_id}
            )
            if found is None:
                raise
            return _item(found), False
        return item, True

    async def get(self, item_id: str) -> OutboxItem | None:
        doc = await self._outbox.find_one({"_id": item_id})
        return None if doc is None else _item(doc)

    async def transition(
        self, item_id: str, expected: State, to: State, now: float, change: Change = NO_CHANGE
    ) -> OutboxItem | None:
        check_transition(expected, to)
        sets: Doc = {"state": str(to), "updated_at": now}
        for name in ("next_attempt_at", "network_post_id", "error_reason", "claimed_at"):
            value = getattr(change, name)
            if value is not None:
                sets[name] = value
        update: Doc = {"$set": sets}
        if change.add_attempt:
            update["$inc"] = {"attempts": 1}
        doc = await self._outbox.find_one_and_update(
            {"_id": item_id, "state": str(expected)},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _item(doc)

    async def due(self, now: float, limit: int) -> Sequence[OutboxItem]:
        cursor = self._outbox.find(
            {
                "state": {"$in": [str(State.QUEUED), str(State.APPROVED)]},
                "next_attempt_at": {"$lte": now},
            }
        ).sort([("next_attempt_at", ASCENDING), ("_id", ASCENDING)])
        return [_item(doc) async for doc in cursor.limit(limit)]

    async def list_items(
        self,
        *,
        account: str | None = None,
        states: Collection[State] = (),
        after_id: str = "",
        limit: int = 50,
    ) -> Sequence[OutboxItem]:
        query: Doc = {"_id": {"$gt": after_id}}
        if account is not None:
            query["account"] = account
        if states:
            query["state"] = {"$in": [str(s) for s in states]}
        if limit <= 0:
            return []
        cursor = self._outbox.find(query).sort("_id", ASCENDING).limit(limit)
        return [_item(doc) async for doc in cursor]

    async def count_sent(self, account: str, actions: Collection[Action], since: float) -> int:
        return await self._outbox.count_documents(
            {
                "account": account,
                "state": str(State.SENT),
                "updated_at": {"$gte": since},
                "action": {"$in": [str(a) for a in actions]},
            }
        )

    async def get_window(self, account: str, endpoint: str) -> RateWindow | None:
        doc = await self._windows.find_one({"_id": f"{account}\n{endpoint}"})
        return None if doc is None else RateWindow(**{k: doc[k] for k in _WINDOW_FIELDS})

    async def put_window(self, window: RateWindow) -> None:
        key = f"{window.account}\n{window.endpoint}"
        await self._windows.replace_one({"_id": key}, {"_id": key, **asdict(window)}, upsert=True)
