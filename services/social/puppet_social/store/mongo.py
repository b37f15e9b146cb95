"""MongoDB adapter of the outbox store: AsyncMongoClient, single-document atomic updates."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from puppet_social.network import PostRecord
from puppet_social.store import (
    NO_CHANGE,
    Action,
    Change,
    Mention,
    NewItem,
    OutboxItem,
    RateWindow,
    State,
    check_transition,
    created_item,
    mention_key,
)

Doc = dict[str, Any]
_WINDOW_FIELDS = tuple(f.name for f in fields(RateWindow))


_ITEM_FIELDS = tuple(f for f in fields(OutboxItem) if f.name != "agent")


def _doc(item: OutboxItem) -> Doc:
    doc = asdict(item)
    doc["_id"] = doc.pop("id")
    doc["action"] = str(item.action)
    doc["state"] = str(item.state)
    return doc


def _item(doc: Doc) -> OutboxItem:
    values: Doc = {f.name: doc["_id" if f.name == "id" else f.name] for f in _ITEM_FIELDS}
    values["agent"] = doc.get("agent", "")  # absent from rows written before it existed
    values["action"] = Action(values["action"])
    values["state"] = State(values["state"])
    return OutboxItem(**values)


def _mention_doc(account: str, post: PostRecord, now: float) -> Doc:
    key = mention_key(post.id)
    doc = asdict(post)
    doc.update(
        _id=f"{account}\n{key}",
        account=account,
        key=key,
        created_at=post.created_at.isoformat(),
        mentioned_handles=list(post.mentioned_handles),
        received_at=now,
    )
    return doc


def _mention(doc: Doc) -> Mention:
    values: Doc = {f.name: doc[f.name] for f in fields(PostRecord)}
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    values["mentioned_handles"] = tuple(values["mentioned_handles"])
    return Mention(doc["account"], PostRecord(**values), doc["received_at"], doc.get("depth", 0))


class MongoStore:
    """The outbox store in one MongoDB database.

    Collections: outbox, rate_windows, mentions and mention_cursors.
    """

    def __init__(self, uri: str, database: str) -> None:
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(uri, tz_aware=True)
        self._db = self._client[database]

    @property
    def _outbox(self) -> AsyncCollection[Doc]:
        return self._db["outbox"]

    @property
    def _windows(self) -> AsyncCollection[Doc]:
        return self._db["rate_windows"]

    @property
    def _mentions(self) -> AsyncCollection[Doc]:
        return self._db["mentions"]

    @property
    def _cursors(self) -> AsyncCollection[Doc]:
        return self._db["mention_cursors"]

    async def open(self) -> None:
        await self._outbox.create_index(
            [("account", ASCENDING), ("request_id", ASCENDING)], unique=True
        )
        await self._outbox.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._mentions.create_index([("account", ASCENDING), ("key", ASCENDING)])
        await self._mentions.create_index([("key", ASCENDING), ("account", ASCENDING)])

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
        agent: str | None = None,
    ) -> Sequence[OutboxItem]:
        query: Doc = {"_id": {"$gt": after_id}}
        if account is not None:
            query["account"] = account
        if agent is not None:
            query["agent"] = agent
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

    async def add_mentions(
        self,
        account: str,
        posts: Sequence[PostRecord],
        now: float,
        *,
        keep: int,
        depths: Mapping[str, int] | None = None,
    ) -> list[Mention]:
        depth_of = dict(depths or {})
        cursor_doc = await self._cursors.find_one({"_id": account})
        floor = str((cursor_doc or {}).get("seen_floor", ""))
        added: list[Mention] = []
        for post in posts:
            if mention_key(post.id) <= floor:
                continue
            try:
                doc = _mention_doc(account, post, now)
                doc["depth"] = depth_of.get(post.id, 0)
                await self._mentions.insert_one(doc)
            except DuplicateKeyError:
                continue
            added.append(Mention(account, post, now, depth_of.get(post.id, 0)))
        beyond = self._mentions.find({"account": account}).sort("key", DESCENDING)
        dropped = [doc async for doc in beyond.skip(max(keep, 0)).limit(1)]
        if dropped:
            last = str(dropped[0]["key"])
            await self._mentions.delete_many({"account": account, "key": {"$lte": last}})
            await self._cursors.update_one(
                {"_id": account}, {"$set": {"seen_floor": max(floor, last)}}, upsert=True
            )
        return added

    async def list_mentions(
        self,
        *,
        account: str | None = None,
        after_id: str = "",
        before_id: str = "",
        limit: int = 50,
        newest_first: bool = False,
    ) -> Sequence[Mention]:
        if limit <= 0:
            return []
        query: Doc = {}
        if account is not None:
            query["account"] = account
        bounds: Doc = {}
        if after_id:
            bounds["$gt"] = mention_key(after_id)
        if before_id:
            bounds["$lt"] = mention_key(before_id)
        if bounds:
            query["key"] = bounds
        order = DESCENDING if newest_first else ASCENDING
        cursor = self._mentions.find(query).sort([("key", order), ("account", order)])
        return [_mention(doc) async for doc in cursor.limit(limit)]

    async def get_mention_cursor(self, account: str) -> str | None:
        doc = await self._cursors.find_one({"_id": account})
        since = None if doc is None else doc.get("since_id")
        return None if since is None else str(since)

    async def put_mention_cursor(self, account: str, since_id: str) -> None:
        await self._cursors.update_one(
            {"_id": account}, {"$set": {"since_id": since_id}}, upsert=True
        )
