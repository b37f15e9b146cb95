"""One suite for every MemoryStore adapter: SQLite (a real file) and MongoDB (nx-27017)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from puppet_memory.store import (
    Channel,
    EmbeddingMismatchError,
    Insert,
    Kind,
    MemoryRow,
    MemoryStore,
    Mood,
    PersonaExistsError,
    PersonaNotFoundError,
    PersonaRow,
    RelationshipRow,
    RequestIdReusedError,
    RevisionConflictError,
)


def vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def row(
    memory_id: str, t: int = 1, kind: Kind = Kind.GENERAL, model: str = "m", dim: int = 8
) -> MemoryRow:
    return MemoryRow(
        agent="a1",
        memory_id=memory_id,
        kind=kind,
        content=f"content {memory_id}",
        importance=0.25,
        valence=-0.5,
        associations=("x", "y"),
        metadata={"k": "v"},
        source="operator",
        channel=Channel.API,
        trust=0.75,
        create_time_us=t,
        update_time_us=t,
        embedding_model=model,
        vector=vec(hash(memory_id) % 1000, dim),
    )


@pytest.fixture
async def persona(store: MemoryStore) -> PersonaRow:
    return await store.create_persona(PersonaRow("a1", display_name="A"), "create-1")


async def test_persona_create_get_list_delete(store: MemoryStore, persona: PersonaRow) -> None:
    assert (persona.agent, persona.display_name, persona.memory_count) == ("a1", "A", 0)
    assert await store.create_persona(PersonaRow("a1"), "create-1") == persona  # replay
    with pytest.raises(PersonaExistsError):
        await store.create_persona(PersonaRow("a1"), "other")
    await store.create_persona(PersonaRow("b2"), None)
    assert [p.agent for p in await store.list_personas("", 10)] == ["a1", "b2"]
    assert [p.agent for p in await store.list_personas("a1", 10)] == ["b2"]
    assert await store.delete_persona("a1") is True
    assert await store.delete_persona("a1") is False
    assert await store.get_persona("a1") is None


async def test_mutate_persona_is_idempotent_per_request_id(
    store: MemoryStore, persona: PersonaRow
) -> None:
    def bump(p: PersonaRow) -> PersonaRow:
        return replace(p, mood=Mood(p.mood.valence + 0.25, 0, 0), state={"k": "v"})

    once, applied = await store.mutate_persona("a1", bump, op="shift", request_id="r1")
    again, applied_again = await store.mutate_persona("a1", bump, op="shift", request_id="r1")
    assert (applied, applied_again) == (True, False)
    assert once.mood.valence == again.mood.valence == 0.25
    assert (await store.get_persona("a1")).state == {"k": "v"}  # type: ignore[union-attr]
    with pytest.raises(RequestIdReusedError):
        await store.mutate_persona("a1", bump, op="other", request_id="r1")
    with pytest.raises(PersonaNotFoundError):
        await store.mutate_persona("zz", bump, op="shift", request_id=None)


async def test_insert_is_idempotent_and_counts(store: MemoryStore, persona: PersonaRow) -> None:
    first = await store.insert_memories("a1", [Insert(row("m1"), "k1"), Insert(row("m2"))])
    assert first.created == [True, True]
    assert first.persona.memory_count == 2
    assert (first.persona.embedding_model, first.persona.embedding_dimension) == ("m", 8)
    replay = await store.insert_memories("a1", [Insert(row("m3"), "k1")])
    assert replay.created == [False]
    assert replay.rows[0].memory_id == "m1"
    stored = await store.get_memories("a1", ["m1"])
    assert stored[0].metadata == {"k": "v"}
    assert stored[0].associations == ("x", "y")
    np.testing.assert_allclose(stored[0].vector, row("m1").vector)
    assert (await store.get_persona("a1")).memory_count == 2  # type: ignore[union-attr]


async def test_insert_sets_the_latest_post_time_with_new_rows_only(
    store: MemoryStore, persona: PersonaRow
) -> None:
    await store.mutate_persona(
        "a1", lambda p: replace(p, state={"k": "v"}), op="set", request_id=None
    )
    done = await store.insert_memories(
        "a1",
        [
            Insert(row("m1", t=10), "k1", last_post_time_us=1_000),
            Insert(row("m2", t=30), None, last_post_time_us=3_000),
            Insert(row("m3", t=20), None, last_post_time_us=2_000),
            Insert(row("m4", t=40)),
        ],
    )
    assert (done.persona.last_post_time_us, done.persona.update_time_us) == (3_000, 30)
    got = await store.get_persona("a1")
    assert got is not None
    assert (got.last_post_time_us, got.update_time_us, got.state) == (3_000, 30, {"k": "v"})
    # A replayed key stores neither its memory nor its time again.
    again = await store.insert_memories(
        "a1", [Insert(row("m5", t=50), "k1", last_post_time_us=9_000)]
    )
    assert again.created == [False]
    got = await store.get_persona("a1")
    assert got is not None
    assert got.last_post_time_us == 3_000
    # Refused: neither the memory nor the time lands.
    with pytest.raises(EmbeddingMismatchError):
        await store.insert_memories(
            "a1", [Insert(row("m6", t=60, dim=4), None, last_post_time_us=8_000)]
        )
    got = await store.get_persona("a1")
    assert got is not None
    assert (got.last_post_time_us, got.memory_count) == (3_000, 4)
    # A later state update (read after the insert) keeps the time.
    changed, _ = await store.mutate_persona(
        "a1", lambda p: replace(p, last_mention_id="x"), op="set", request_id=None
    )
    assert (changed.last_post_time_us, changed.last_mention_id) == (3_000, "x")
    # Without a time, an insert leaves it as it is.
    await store.insert_memories("a1", [Insert(row("m7", t=70))])
    got = await store.get_persona("a1")
    assert got is not None
    assert (got.last_post_time_us, got.update_time_us) == (3_000, 30)


async def test_insert_is_all_or_nothing(store: MemoryStore, persona: PersonaRow) -> None:
    seen: list[PersonaRow] = []

    def admit(p: PersonaRow) -> None:
        seen.append(p)
        if p.memory_count:
            raise RequestIdReusedError("k", "refused")

    await store.insert_memories("a1", [Insert(row("m1"))], admit)
    with pytest.raises(RequestIdReusedError):
        await store.insert_memories("a1", [Insert(row("m5"))], admit)
    assert [p.memory_count for p in seen] == [0, 1]  # the persona as it was before each
    with pytest.raises(EmbeddingMismatchError):
        await store.insert_memories("a1", [Insert(row("m2")), Insert(row("m3", dim=4))])
    with pytest.raises(EmbeddingMismatchError):
        await store.insert_memories("a1", [Insert(row("m4", model="other"))])
    assert [m.memory_id for m in await store.list_memories("a1", frozenset(), None, 10)] == ["m1"]
    with pytest.raises(PersonaNotFoundError):
        await store.insert_memories("zz", [Insert(row("m9"))])


async def test_list_is_newest_first_with_cursor_and_kinds(
    store: MemoryStore, persona: PersonaRow
) -> None:
    rows = [row(f"m{i}", t=i % 3, kind=Kind.CORE if i % 2 else Kind.EVENT) for i in range(7)]
    await store.insert_memories("a1", [Insert(r) for r in rows])
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_memories("a1", frozenset(), cursor, 3)
        seen += [m.memory_id for m in page]
        if len(page) < 3:
            break
        cursor = (page[-1].create_time_us, page[-1].memory_id)
    expected = sorted(rows, key=lambda r: (r.create_time_us, r.memory_id), reverse=True)
    assert seen == [r.memory_id for r in expected]
    cores = await store.list_memories("a1", frozenset({Kind.CORE}), None, 10)
    assert {m.memory_id for m in cores} == {"m1", "m3", "m5"}


async def test_revision_follows_every_memory_write(store: MemoryStore, persona: PersonaRow) -> None:
    done = await store.insert_memories("a1", [Insert(row("m1", kind=Kind.CORE)), Insert(row("m2"))])
    assert done.revision == 1
    updated = await store.update_memory("a1", "m2", lambda m: replace(m, kind=Kind.CORE))
    assert updated is not None
    assert updated[1] == 2
    assert (await store.get_persona("a1")).core_count == 2  # type: ignore[union-attr]
    assert await store.delete_memory("a1", "m1") == 3
    assert await store.delete_memory("a1", "m1") is None
    assert await store.update_memory("a1", "m1", lambda m: m) is None
    p = await store.get_persona("a1")
    assert (p.memory_count, p.core_count, p.memory_revision) == (1, 1, 3)  # type: ignore[union-attr]


async def test_load_index(store: MemoryStore, persona: PersonaRow) -> None:
    await store.insert_memories("a1", [Insert(row("m1", t=5)), Insert(row("m2", t=7))])
    snap = await store.load_index("a1")
    assert snap is not None
    assert snap.revision == 1
    assert sorted(snap.ids) == ["m1", "m2"]
    assert snap.vectors.shape == (2, 8)
    i = snap.ids.index("m2")
    np.testing.assert_allclose(snap.vectors[i], row("m2").vector)
    assert (snap.create_time_us[i], snap.kinds[i]) == (7, Kind.GENERAL)
    assert snap.trust[i] == pytest.approx(0.75)
    assert await store.load_index("zz") is None


async def test_replace_and_set_vectors_check_the_revision(
    store: MemoryStore, persona: PersonaRow
) -> None:
    await store.insert_memories("a1", [Insert(row(f"m{i}")) for i in range(4)])
    with pytest.raises(RevisionConflictError):
        await store.replace_memories("a1", expected_revision=0, delete_ids=["m0"], insert=[])
    revision = await store.replace_memories(
        "a1", expected_revision=1, delete_ids=["m0", "m1"], insert=[row("s1", kind=Kind.LONG_TERM)]
    )
    assert revision == 2
    assert (await store.get_persona("a1")).memory_count == 3  # type: ignore[union-attr]
    ids = ["m2", "m3", "s1"]
    new = {m: vec(i, 4) for i, m in enumerate(ids)}
    with pytest.raises(RevisionConflictError):
        await store.set_vectors("a1", expected_revision=1, model="n", vectors=new)
    assert await store.set_vectors("a1", expected_revision=2, model="n", vectors=new) == 3
    p = await store.get_persona("a1")
    assert (p.embedding_model, p.embedding_dimension) == ("n", 4)  # type: ignore[union-attr]
    got = await store.get_memories("a1", ["m2"])
    assert got[0].embedding_model == "n"
    np.testing.assert_allclose(got[0].vector, new["m2"])


async def test_requests_and_relationships(store: MemoryStore, persona: PersonaRow) -> None:
    await store.record_request("a1", "r1", "consolidate", '{"x": 1}')
    assert await store.find_request("a1", "r1") == ("consolidate", '{"x": 1}')
    assert await store.find_request("a1", "r2") is None

    def meet(r: RelationshipRow) -> RelationshipRow:
        return replace(r, interaction_count=r.interaction_count + 1, notes=("hi", *r.notes))

    first, _ = await store.mutate_relationship("a1", "bob", meet, op="meet", request_id="q1")
    again, applied = await store.mutate_relationship("a1", "bob", meet, op="meet", request_id="q1")
    assert (first.interaction_count, again.interaction_count, applied) == (1, 1, False)
    await store.mutate_relationship("a1", "amy", meet, op="meet", request_id=None)
    assert [r.counterparty for r in await store.list_relationships("a1", "", 10)] == ["amy", "bob"]
    assert [r.counterparty for r in await store.list_relationships("a1", "amy", 10)] == ["bob"]
    assert (await store.get_relationship("a1", "bob")).notes == ("hi",)  # type: ignore[union-attr]
    with pytest.raises(PersonaNotFoundError):
        await store.mutate_relationship("zz", "bob", meet, op="meet", request_id=None)
    assert await store.delete_persona("a1")
    assert await store.get_relationship("a1", "bob") is None
    assert await store.find_request("a1", "r1") is None
