"""Concurrent calls through the wire: creates committed in groups, recalls while writing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from puppet.memory.v1 import memory_pb2 as m
from puppet.memory.v1 import memory_service_pb2 as pb
from puppet.memory.v1 import persona_pb2 as p
from puppet_memory.store import Admit, Insert, Inserted, PersonaRow
from puppet_memory.store.sqlite import SqliteStore
from puppet_runtime.testing import status_of

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub as Stub

MODEL = "test/e32"
DIM = 32


class GatedStore(SqliteStore):
    """SQLite that holds its first memory write until the test opens the gate.

    Creates sent meanwhile queue behind that write, so the next group is known in advance. It
    records the size of every insert_memories call and counts persona reads.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = asyncio.Event()
        self.held = asyncio.Event()
        self.writes: list[int] = []
        self.reads = 0
        self.read = asyncio.Condition()

    async def insert_memories(
        self, agent: str, inserts: Sequence[Insert], admit: Admit | None = None
    ) -> Inserted:
        self.writes.append(len(inserts))
        if len(self.writes) == 1:
            self.held.set()
            await self.gate.wait()
        return await super().insert_memories(agent, inserts, admit)

    async def get_persona(self, agent: str) -> PersonaRow | None:
        row = await super().get_persona(agent)
        async with self.read:
            self.reads += 1
            self.read.notify_all()
        return row


def vectors(n: int, seed: int, dim: int = DIM) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    out: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def create(
    content: str, vector: npt.NDArray[np.float32] | None = None, **kw: Any
) -> pb.CreateMemoryRequest:
    memory = m.Memory(content=content, **kw.pop("memory", {}))
    if vector is not None:
        kw["embedding"] = m.Embedding(model=MODEL, values=vector.tolist())
    return pb.CreateMemoryRequest(parent="agents/a1", memory=memory, **kw)


async def grouped(store: GatedStore, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Make the calls while the first write is held, so they all queue into one group.

    Each call is a create of text: it reads the persona once before it queues (the embedder
    used here never suspends), so once every call has read, every call has queued.
    """
    await store.held.wait()
    async with store.read:
        queued = store.reads + len(calls)
        pending = [asyncio.ensure_future(call()) for call in calls]
        await store.read.wait_for(lambda: store.reads >= queued)
    store.gate.set()
    return await asyncio.gather(*pending, return_exceptions=True)


def code_and_reason(outcome: Any) -> tuple[grpc.StatusCode, str]:
    assert isinstance(outcome, grpc.aio.AioRpcError), outcome
    code, info, _ = status_of(outcome)
    assert info is not None
    return code, info.reason


async def count(stub: Stub) -> int:
    got = await stub.GetPersona(pb.GetPersonaRequest(name="agents/a1"))
    return got.persona.memory_count


@pytest.mark.parametrize("poisoned", [False, True])
async def test_grouped_creates_each_get_their_own_answer(serve, tmp_path, poisoned) -> None:
    store = GatedStore(tmp_path / "gated.sqlite3")
    async with serve(store=store) as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
        await stub.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", request_id="taken"))
        first = stub.CreateMemory(create("first"))  # an RPC starts when it is made
        requests = [create(f"good {i}") for i in range(8)]
        requests += [create("dup", request_id="same") for _ in range(2)]
        calls: list[Callable[[], Awaitable[Any]]] = [
            partial(stub.CreateMemory, r) for r in requests
        ]
        if poisoned:  # each fails the group's transaction, so the group goes one by one
            mixed = pb.BatchCreateMemoriesRequest(
                parent="agents/a1", requests=[create("text"), create("vector", vectors(1, 2)[0])]
            )
            calls.append(partial(stub.BatchCreateMemories, mixed))
            calls.append(partial(stub.CreateMemory, create("reused", request_id="taken")))
        outcomes = await grouped(store, calls)
        await first

        assert [o.memory.content for o in outcomes[:8]] == [f"good {i}" for i in range(8)]
        assert outcomes[8].memory.name == outcomes[9].memory.name  # one request_id, one memory
        if poisoned:
            mismatch = (grpc.StatusCode.FAILED_PRECONDITION, "EMBEDDING_MISMATCH")
            assert code_and_reason(outcomes[10]) == mismatch  # a 32-d vector; the index is 384-d
            reused = (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
            assert code_and_reason(outcomes[11]) == reused
            assert store.writes[:2] == [1, 13]  # the group, then one by one:
            assert sorted(store.writes[2:]) == [1] * 11 + [2]
        else:
            assert store.writes == [1, 10]  # one transaction for the whole group
        assert await count(stub) == 1 + 8 + 1
        again = await stub.CreateMemory(create("dup", request_id="same"))
        assert again.memory.name == outcomes[8].memory.name


async def test_grouped_creates_keep_the_latest_post_time(serve, tmp_path) -> None:
    store = GatedStore(tmp_path / "gated.sqlite3")
    async with serve(store=store) as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
        first = stub.CreateMemory(create("first", last_post_time=Timestamp(seconds=100)))
        seconds = [300, 500, 200, None, 400]
        requests = [
            create(f"post {i}", last_post_time=None if s is None else Timestamp(seconds=s))
            for i, s in enumerate(seconds)
        ]
        await grouped(store, [partial(stub.CreateMemory, r) for r in requests])
        await first
        assert store.writes == [1, 5]
        got = await stub.GetPersona(pb.GetPersonaRequest(name="agents/a1"))
        assert (got.persona.last_post_time.seconds, got.persona.memory_count) == (500, 6)


async def test_grouped_core_creates_respect_the_budget(serve, tmp_path) -> None:
    store = GatedStore(tmp_path / "gated.sqlite3")
    async with serve(store=store) as stub:
        await stub.CreatePersona(
            pb.CreatePersonaRequest(persona_id="a1", persona=p.Persona(memory_budget=3))
        )
        first = stub.CreateMemory(create("first"))
        core = {"kind": m.MEMORY_KIND_CORE}
        requests = [create(f"core {i}", memory=core) for i in range(4)]
        outcomes = await grouped(store, [partial(stub.CreateMemory, r) for r in requests])
        await first
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert len(failed) == 1  # whichever came last: the first three fill the budget
        exhausted = (grpc.StatusCode.RESOURCE_EXHAUSTED, "MEMORY_BUDGET_EXHAUSTED")
        assert code_and_reason(failed[0]) == exhausted
        assert store.writes == [1, 4, 1, 1, 1, 1]  # refused in the group: one by one
        assert await count(stub) == 4  # over budget: "first" became a summary (cores stay)


async def test_recall_during_creates_and_deletes_sees_a_consistent_index(memory: Stub) -> None:
    n = 4_500  # above the scanner's inline limit: scans run on its threads
    v = vectors(n + 200, 4)
    for start in range(0, n, 1_000):
        await memory.BatchCreateMemories(
            pb.BatchCreateMemoriesRequest(
                parent="agents/a1",
                requests=[create(f"m{i}", v[i]) for i in range(start, min(n, start + 1_000))],
            )
        )
    listed = await memory.ListMemories(pb.ListMemoriesRequest(parent="agents/a1", page_size=50))
    doomed = [x.name for x in listed.memories if int(x.content[1:]) % 2]  # odd ones go
    exact = pb.RecallWeights(similarity=1.0, recency=0.0, importance=0.0)

    async def top(i: int) -> tuple[str, float]:
        got = await memory.RecallMemories(
            pb.RecallMemoriesRequest(
                parent="agents/a1",
                embedding=m.Embedding(model=MODEL, values=v[i].tolist()),
                top_k=3,
                weights=exact,
            )
        )
        return got.results[0].memory.content, round(got.results[0].similarity, 4)

    targets = list(range(0, n, 150))  # even: never deleted
    creates = [memory.CreateMemory(create(f"m{i}", v[i])) for i in range(n, n + 200)]
    deletes = [memory.DeleteMemory(pb.DeleteMemoryRequest(name=name)) for name in doomed]
    results, _, _ = await asyncio.gather(
        asyncio.gather(*(top(i) for i in targets)),
        asyncio.gather(*creates),
        asyncio.gather(*deletes),
    )
    assert results == [(f"m{i}", 1.0) for i in targets]
    assert await top(n + 199) == (f"m{n + 199}", 1.0)
    gone = next(int(x.content[1:]) for x in listed.memories if x.name in doomed)
    assert (await top(gone))[0] != f"m{gone}"
    assert await count(memory) == n + 200 - len(doomed)
