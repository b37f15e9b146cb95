"""ONE suite over both agent store adapters: SQLite (a real file) and MongoDB (nx-27017)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from puppet_agent.store import AgentStore, EventRecord, PostRecord, RequestRecord
from puppet_agent.store.mongo import MongoStore
from puppet_agent.store.sqlite import SqliteStore
from puppet_runtime.testing import mongo_wire_server
from pymongo import AsyncMongoClient

COLLECTIONS = ("personas", "events", "posts", "requests", "counters")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongo_wire_server(tmp_path_factory.mktemp("nx")) as uri:
        yield uri


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AgentStore]:
    opened: AgentStore
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "agent.sqlite3")
    else:
        uri = request.getfixturevalue("mongo_uri")
        database = f"t_{uuid.uuid4().hex[:12]}"
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        for name in COLLECTIONS:  # nx-27017 serves one namespace whatever the database name
            await client[database].drop_collection(name)
        await client.close()
        opened = MongoStore(uri, database)
    await opened.open()
    yield opened
    await opened.close()


def event(eid: str, at: float = 1.0) -> EventRecord:
    return EventRecord(eid, "news", {"headline": eid}, ("a",), "normal", at, None)


def post(pid: str, agent: str = "a", delivery: str = "sent") -> PostRecord:
    return PostRecord(pid, agent, "post", f"text {pid}", "", "", "", delivery, None, 1.0, "api")


async def test_personas_keep_creation_order_and_version(store: AgentStore) -> None:
    first = await store.upsert_persona("b", {"id": "b"}, 1.0)
    second = await store.upsert_persona("a", {"id": "a"}, 2.0)
    replaced = await store.upsert_persona("b", {"id": "b", "name": "B"}, 3.0)
    assert (first.version, replaced.version) == (1, 2)
    assert replaced.seq == first.seq
    assert replaced.config == {"id": "b", "name": "B"}
    assert replaced.create_time == 1.0
    assert replaced.update_time == 3.0
    assert [p.id for p in await store.list_personas()] == ["b", "a"]
    assert [p.id for p in await store.list_personas(after_seq=first.seq)] == ["a"]
    assert [p.id for p in await store.list_personas(limit=1)] == ["b"]
    assert second.seq > first.seq
    assert await store.count_personas() == 2


async def test_pause_resume_and_delete(store: AgentStore) -> None:
    await store.upsert_persona("a", {"id": "a"}, 1.0)
    paused = await store.set_paused("a", True, 5.0)
    again = await store.set_paused("a", True, 6.0)
    assert paused is not None
    assert again is not None
    assert (paused.paused, paused.pause_time, again.pause_time) == (True, 5.0, 5.0)
    assert [p.id for p in await store.list_personas(paused=True)] == ["a"]
    assert await store.list_personas(paused=False) == []
    replaced = await store.upsert_persona("a", {"id": "a", "x": 1}, 7.0)
    assert replaced.paused
    resumed = await store.set_paused("a", False, 8.0)
    assert resumed is not None
    assert (resumed.paused, resumed.pause_time) == (False, None)
    assert await store.set_paused("missing", True, 1.0) is None
    assert await store.delete_persona("a")
    assert not await store.delete_persona("a")
    assert await store.get_persona("a") is None


async def test_events_pending_then_processed_newest_first(store: AgentStore) -> None:
    stored = [await store.add_event(event(f"e{i}", float(i))) for i in range(4)]
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert [e.id for e in await store.pending_events()] == ["e0", "e1", "e2", "e3"]
    for e in stored[:3]:
        await store.mark_processed(e.id, 10.0)
    assert [e.id for e in await store.pending_events()] == ["e3"]
    page = await store.list_processed(before_seq=None, limit=2)
    assert [e.id for e in page] == ["e2", "e1"]
    assert page[0].processed_at == 10.0
    assert page[0].data == {"headline": "e2"}
    assert page[0].targets == ("a",)
    rest = await store.list_processed(before_seq=page[-1].seq, limit=2)
    assert [e.id for e in rest] == ["e0"]


async def test_posts_newest_first_filtered_and_updated(store: AgentStore) -> None:
    for i in range(3):
        await store.add_post(post(f"p{i}", delivery="queued" if i == 1 else "sent"))
    await store.add_post(post("other", agent="b"))
    listed = await store.list_posts("a", delivery=None, before_seq=None, limit=10)
    assert [p.id for p in listed] == ["p2", "p1", "p0"]
    assert [
        p.id for p in await store.list_posts("a", delivery="queued", before_seq=None, limit=10)
    ] == ["p1"]
    older = await store.list_posts("a", delivery=None, before_seq=listed[0].seq, limit=1)
    assert [p.id for p in older] == ["p1"]
    await store.update_post(
        "p1", delivery="sent", social_post="accounts/a/posts/9", scheduled_time=None
    )
    [updated] = await store.list_posts("a", delivery=None, before_seq=listed[0].seq, limit=1)
    assert (updated.delivery, updated.social_post) == ("sent", "accounts/a/posts/9")


async def test_request_ids_keep_the_first_result(store: AgentStore) -> None:
    assert await store.recall_request("a", "r1") is None
    first = await store.remember_request(RequestRecord("a", "r1", "post", "{1}"))
    again = await store.remember_request(RequestRecord("a", "r1", "mood", "{2}"))
    assert first == again == RequestRecord("a", "r1", "post", "{1}")
    assert await store.recall_request("b", "r1") is None
    assert await store.recall_request("a", "r1") == first
