"""MemoryService through the wire: one test per behaviour of each RPC."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from puppet.memory.v1 import (
    memory_pb2 as m,
)
from puppet.memory.v1 import (
    memory_service_pb2 as pb,
)
from puppet.memory.v1 import (
    persona_pb2 as p,
)
from puppet.memory.v1 import (
    relationship_pb2 as r,
)
from puppet_memory.store.sqlite import SqliteStore
from puppet_runtime.testing import status_of

if TYPE_CHECKING:
    from puppet.memory.v1.memory_service_pb2_grpc import MemoryServiceAsyncStub as Stub

NOW = timestamp_pb2.Timestamp()
NOW.GetCurrentTime()


async def fails(call, code: grpc.StatusCode, reason: str, field: str | None = None):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    got, info, bad = status_of(caught.value)
    assert got is code, caught.value.details()
    assert info is not None
    assert info.domain == "memory.puppet"
    assert info.reason == reason
    if field is not None:
        assert bad is not None
        assert field in [v.field for v in bad.field_violations], bad
    return info


def create(content: str, parent: str = "agents/a1", **memory) -> pb.CreateMemoryRequest:
    return pb.CreateMemoryRequest(parent=parent, memory=m.Memory(content=content, **memory))


async def contents(stub: Stub, parent: str = "agents/a1", **kw) -> list[str]:
    out, token = [], ""
    while True:
        page = await stub.ListMemories(
            pb.ListMemoriesRequest(parent=parent, page_token=token, page_size=2, **kw)
        )
        out += [x.content for x in page.memories]
        token = page.next_page_token
        if not token:
            return out


# personas


async def test_create_get_and_list_personas_to_the_end(memory: Stub) -> None:
    made = await memory.CreatePersona(
        pb.CreatePersonaRequest(
            persona_id="coby-agent",
            persona=p.Persona(display_name="Coby", baseline_mood=p.Mood(valence=0.5)),
        )
    )
    assert made.persona.name == "agents/coby-agent"
    assert made.persona.mood.valence == 0.5  # unset mood starts at the baseline
    assert made.persona.effective_memory_budget == 10_000
    got = await memory.GetPersona(pb.GetPersonaRequest(name="agents/coby-agent"))
    assert got.persona == made.persona
    for i in range(3):
        await memory.CreatePersona(pb.CreatePersonaRequest(persona_id=f"p{i}"))
    names, token = [], ""
    while True:
        page = await memory.ListPersonas(pb.ListPersonasRequest(page_size=2, page_token=token))
        names += [x.name for x in page.personas]
        token = page.next_page_token
        if not token:
            break
    assert names == ["agents/a1", "agents/coby-agent", "agents/p0", "agents/p1", "agents/p2"]


async def test_create_persona_twice(memory: Stub) -> None:
    req = pb.CreatePersonaRequest(persona_id="b2", request_id="r1")
    first = await memory.CreatePersona(req)
    assert (await memory.CreatePersona(req)).persona == first.persona
    info = await fails(
        memory.CreatePersona(pb.CreatePersonaRequest(persona_id="b2")),
        grpc.StatusCode.ALREADY_EXISTS,
        "PERSONA_ALREADY_EXISTS",
    )
    assert info.metadata["name"] == "agents/b2"
    again = await memory.CreatePersona(
        pb.CreatePersonaRequest(persona_id="b2", allow_existing=True)
    )
    assert again.persona.name == "agents/b2"


@pytest.mark.parametrize("persona_id", ["", "Upper", "-x", "a" * 65, "a/b", "a b"])
async def test_create_persona_rejects_bad_ids(memory: Stub, persona_id: str) -> None:
    await fails(
        memory.CreatePersona(pb.CreatePersonaRequest(persona_id=persona_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "persona_id",
    )


UNKNOWN = "agents/nobody"
UNKNOWN_PERSONA_CALLS = {
    "GetPersona": pb.GetPersonaRequest(name=UNKNOWN),
    "DeletePersona": pb.DeletePersonaRequest(name=UNKNOWN),
    "ShiftMood": pb.ShiftMoodRequest(name=UNKNOWN, valence_delta=0.1),
    "UpdatePersonaState": pb.UpdatePersonaStateRequest(
        persona=p.Persona(name=UNKNOWN), update_mask=field_mask_pb2.FieldMask(paths=["mood"])
    ),
    "CreateMemory": create("x", parent=UNKNOWN),
    "BatchCreateMemories": pb.BatchCreateMemoriesRequest(
        parent=UNKNOWN, requests=[create("x", parent="")]
    ),
    "ListMemories": pb.ListMemoriesRequest(parent=UNKNOWN),
    "GetMemory": pb.GetMemoryRequest(name=f"{UNKNOWN}/memories/abc"),
    "DeleteMemory": pb.DeleteMemoryRequest(name=f"{UNKNOWN}/memories/abc", allow_missing=True),
    "RecallMemories": pb.RecallMemoriesRequest(parent=UNKNOWN, text="tea"),
    "ReembedMemories": pb.ReembedMemoriesRequest(parent=UNKNOWN),
    "ConsolidateMemories": pb.ConsolidateMemoriesRequest(parent=UNKNOWN),
    "ListRelationships": pb.ListRelationshipsRequest(parent=UNKNOWN),
    "GetRelationship": pb.GetRelationshipRequest(name=f"{UNKNOWN}/relationships/bob"),
    "RecordInteraction": pb.RecordInteractionRequest(name=f"{UNKNOWN}/relationships/bob"),
}


@pytest.mark.parametrize("method", sorted(UNKNOWN_PERSONA_CALLS))
async def test_unknown_persona_is_not_found_everywhere(memory: Stub, method: str) -> None:
    info = await fails(
        getattr(memory, method)(UNKNOWN_PERSONA_CALLS[method]),
        grpc.StatusCode.NOT_FOUND,
        "PERSONA_NOT_FOUND",
    )
    assert info.metadata["name"] == UNKNOWN


async def test_shift_mood_clamps_and_is_idempotent(memory: Stub) -> None:
    req = pb.ShiftMoodRequest(
        name="agents/a1", valence_delta=-1.5, arousal_delta=0.25, dominance_delta=1, request_id="s1"
    )
    first = await memory.ShiftMood(req)
    assert (first.persona.mood.valence, first.persona.mood.arousal) == (-1.0, 0.25)
    assert first.persona.mood.dominance == 1.0
    assert (await memory.ShiftMood(req)).persona.mood == first.persona.mood
    await fails(
        memory.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", arousal_delta=math.nan)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "arousal_delta",
    )


async def test_update_persona_state_by_mask(memory: Stub) -> None:
    await memory.UpdatePersonaState(
        pb.UpdatePersonaStateRequest(
            persona=p.Persona(name="agents/a1", state={"a": "1", "b": "2"}),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        )
    )
    done = await memory.UpdatePersonaState(
        pb.UpdatePersonaStateRequest(
            persona=p.Persona(
                name="agents/a1",
                state={"c": "3"},
                last_mention_id="1799",
                last_post_time=NOW,
                memory_budget=50,
                display_name="ignored: not in the mask",
            ),
            update_mask=field_mask_pb2.FieldMask(
                paths=["state.c", "state.a", "last_mention_id", "last_post_time", "memory_budget"]
            ),
        )
    )
    assert dict(done.persona.state) == {"b": "2", "c": "3"}
    assert done.persona.last_mention_id == "1799"
    assert done.persona.last_post_time.seconds == NOW.seconds
    assert (done.persona.memory_budget, done.persona.effective_memory_budget) == (50, 50)
    assert done.persona.display_name == ""
    for mask, field in [([], "update_mask"), (["nope"], "update_mask.paths")]:
        await fails(
            memory.UpdatePersonaState(
                pb.UpdatePersonaStateRequest(
                    persona=p.Persona(name="agents/a1"),
                    update_mask=field_mask_pb2.FieldMask(paths=mask),
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_FIELD",
            field,
        )


async def test_persona_state_survives_a_restart(serve, tmp_path) -> None:
    async with serve() as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
        await stub.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", valence_delta=0.5))
        await stub.UpdatePersonaState(
            pb.UpdatePersonaStateRequest(
                persona=p.Persona(name="agents/a1", last_mention_id="42", last_post_time=NOW),
                update_mask=field_mask_pb2.FieldMask(paths=["last_mention_id", "last_post_time"]),
            )
        )
        await stub.CreateMemory(create("likes tea"))
        await stub.RecordInteraction(
            pb.RecordInteractionRequest(name="agents/a1/relationships/bob")
        )
    async with serve() as stub:
        got = (await stub.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
        assert (got.mood.valence, got.last_mention_id, got.memory_count) == (0.5, "42", 1)
        assert got.last_post_time.seconds == NOW.seconds
        assert await contents(stub) == ["likes tea"]
        rel = await stub.GetRelationship(
            pb.GetRelationshipRequest(name="agents/a1/relationships/bob")
        )
        assert rel.relationship.interaction_count == 1


async def test_delete_persona_purges_everything(memory: Stub) -> None:
    await memory.CreateMemory(create("likes tea"))
    await memory.RecordInteraction(pb.RecordInteractionRequest(name="agents/a1/relationships/bob"))
    await memory.DeletePersona(pb.DeletePersonaRequest(name="agents/a1"))
    await fails(
        memory.DeletePersona(pb.DeletePersonaRequest(name="agents/a1")),
        grpc.StatusCode.NOT_FOUND,
        "PERSONA_NOT_FOUND",
    )
    await memory.DeletePersona(pb.DeletePersonaRequest(name="agents/a1", allow_missing=True))
    await memory.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
    assert await contents(memory) == []
    page = await memory.ListRelationships(pb.ListRelationshipsRequest(parent="agents/a1"))
    assert list(page.relationships) == []


# memories


async def test_create_memory_defaults_and_explicit_zero(memory: Stub) -> None:
    plain = (await memory.CreateMemory(create("likes tea"))).memory
    assert plain.name.startswith("agents/a1/memories/")
    assert (plain.kind, plain.importance) == (m.MEMORY_KIND_GENERAL, 0.5)
    assert plain.provenance.channel == m.PROVENANCE_CHANNEL_API
    assert plain.provenance.trust == 0.5
    assert (plain.embedding_model, plain.embedding_dimension) == ("test/hashing-384", 384)
    assert plain.create_time.seconds > 0
    zero = (await memory.CreateMemory(create("meh", importance=0.0))).memory
    assert zero.HasField("importance")
    assert zero.importance == 0.0
    got = await memory.GetMemory(pb.GetMemoryRequest(name=plain.name))
    assert got.memory == plain


async def test_create_memory_is_idempotent_per_request_id(memory: Stub) -> None:
    req = create("likes tea")
    req.request_id = "r1"
    first, again = await memory.CreateMemory(req), await memory.CreateMemory(req)
    assert first.memory.name == again.memory.name
    assert await contents(memory) == ["likes tea"]
    await fails(
        memory.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", request_id="r1")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )


BAD_MEMORIES = [
    (create(""), "memory.content"),
    (create("x" * 8_001), "memory.content"),
    (create("x", importance=1.5), "memory.importance"),
    (create("x", importance=math.nan), "memory.importance"),
    (create("x", emotional_valence=math.inf), "memory.emotional_valence"),
    (create("x", kind=99), "memory.kind"),
    (create("x", associations=["a"] * 33), "memory.associations"),
    (create("x", metadata={str(i): "v" for i in range(33)}), "memory.metadata"),
    (create("x", metadata={"k": "v" * 1_025}), "memory.metadata['k']"),
    (create("x", provenance=m.Provenance(trust=-0.1)), "memory.provenance.trust"),
    (
        create("x", provenance=m.Provenance(channel=m.PROVENANCE_CHANNEL_CONSOLIDATION)),
        "memory.provenance.channel",
    ),
    (
        create("x", create_time=timestamp_pb2.Timestamp(seconds=NOW.seconds + 3600)),
        "memory.create_time",
    ),
    (pb.CreateMemoryRequest(parent="agents/a1"), "memory"),
    (create("x", parent="a1"), "parent"),
    (
        pb.CreateMemoryRequest(
            parent="agents/a1",
            memory=m.Memory(content="x"),
            last_post_time=timestamp_pb2.Timestamp(seconds=NOW.seconds + 3600),
        ),
        "last_post_time",
    ),
    (
        pb.CreateMemoryRequest(
            parent="agents/a1",
            memory=m.Memory(content="x"),
            last_post_time=timestamp_pb2.Timestamp(seconds=1, nanos=-1),
        ),
        "last_post_time",
    ),
    (
        pb.CreateMemoryRequest(
            parent="agents/a1", memory=m.Memory(content="x"), request_id="r" * 129
        ),
        "request_id",
    ),
    (
        pb.CreateMemoryRequest(
            parent="agents/a1",
            memory=m.Memory(content="x"),
            embedding=m.Embedding(model="e", values=[math.nan, 1.0]),
        ),
        "embedding.values",
    ),
    (
        pb.CreateMemoryRequest(
            parent="agents/a1", memory=m.Memory(content="x"), embedding=m.Embedding(values=[1.0])
        ),
        "embedding.model",
    ),
]


@pytest.mark.parametrize(("req", "field"), BAD_MEMORIES)
async def test_create_memory_rejects_bad_fields(memory: Stub, req, field: str) -> None:
    await fails(memory.CreateMemory(req), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", field)
    assert await contents(memory) == []
    persona = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert not persona.HasField("last_post_time")


async def test_create_memory_sets_last_post_time_with_the_memory(memory: Stub) -> None:
    posted = timestamp_pb2.Timestamp(seconds=NOW.seconds - 60, nanos=123_000)
    req = create("a post", kind=m.MEMORY_KIND_POST)
    req.request_id = "post-1"
    req.last_post_time.CopyFrom(posted)
    await memory.CreateMemory(req)
    got = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert got.last_post_time == posted
    assert got.update_time.seconds >= NOW.seconds
    again = pb.CreateMemoryRequest()
    again.CopyFrom(req)
    again.last_post_time.seconds += 30  # a replay stores neither memory nor time again
    await memory.CreateMemory(again)
    await memory.CreateMemory(create("no time"))  # unset leaves it as it is
    got = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert (got.last_post_time, got.memory_count) == (posted, 2)
    later = timestamp_pb2.Timestamp(seconds=NOW.seconds - 10)
    batch = pb.BatchCreateMemoriesRequest(
        parent="agents/a1",
        requests=[
            pb.CreateMemoryRequest(memory=m.Memory(content="b1"), last_post_time=later),
            pb.CreateMemoryRequest(memory=m.Memory(content="b2"), last_post_time=posted),
        ],
    )
    await memory.BatchCreateMemories(batch)
    got = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert got.last_post_time == later  # the latest of the batch
    batch.requests[1].last_post_time.seconds = NOW.seconds + 3600
    batch.requests[0].memory.content = "c1"
    await fails(
        memory.BatchCreateMemories(batch),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "requests[1].last_post_time",
    )
    got = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert (got.last_post_time, got.memory_count) == (later, 4)


async def test_batch_create_is_all_or_nothing(memory: Stub) -> None:
    bad = pb.BatchCreateMemoriesRequest(
        parent="agents/a1", requests=[create("one"), create(""), create("three")]
    )
    await fails(
        memory.BatchCreateMemories(bad),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "requests[1].memory.content",
    )
    mixed = pb.BatchCreateMemoriesRequest(
        parent="agents/a1",
        requests=[
            create("one"),
            pb.CreateMemoryRequest(
                memory=m.Memory(content="two"), embedding=m.Embedding(model="other", values=[1, 0])
            ),
        ],
    )
    await fails(
        memory.BatchCreateMemories(mixed), grpc.StatusCode.FAILED_PRECONDITION, "EMBEDDING_MISMATCH"
    )
    assert await contents(memory) == []
    good = pb.BatchCreateMemoriesRequest(
        parent="agents/a1", requests=[create("one"), create("two")], request_id="b1"
    )
    first, again = await memory.BatchCreateMemories(good), await memory.BatchCreateMemories(good)
    assert [x.name for x in first.memories] == [x.name for x in again.memories]
    assert sorted(await contents(memory)) == ["one", "two"]


async def test_list_memories_newest_first_filtered_and_paged(memory: Stub) -> None:
    for i in range(5):
        kind = m.MEMORY_KIND_CORE if i % 2 else m.MEMORY_KIND_EVENT
        at = timestamp_pb2.Timestamp(seconds=NOW.seconds - 100 + i)
        await memory.CreateMemory(create(f"m{i}", kind=kind, create_time=at))
    assert await contents(memory) == ["m4", "m3", "m2", "m1", "m0"]
    assert await contents(memory, kinds=[m.MEMORY_KIND_CORE]) == ["m3", "m1"]
    first = await memory.ListMemories(pb.ListMemoriesRequest(parent="agents/a1", page_size=2))
    for req, field in [
        (pb.ListMemoriesRequest(parent="agents/a1", page_token="garbage!"), "page_token"),
        (
            pb.ListMemoriesRequest(
                parent="agents/a1", page_token=first.next_page_token, kinds=[m.MEMORY_KIND_CORE]
            ),
            "page_token",
        ),
        (pb.ListMemoriesRequest(parent="agents/a1", page_size=-1), "page_size"),
        (pb.ListMemoriesRequest(parent="agents/a1", kinds=[m.MEMORY_KIND_UNSPECIFIED]), "kinds[0]"),
    ]:
        await fails(
            memory.ListMemories(req), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", field
        )


async def test_get_update_delete_memory(memory: Stub) -> None:
    made = (await memory.CreateMemory(create("likes tea", associations=["tea"]))).memory
    updated = await memory.UpdateMemory(
        pb.UpdateMemoryRequest(
            memory=m.Memory(name=made.name, importance=0.9, kind=m.MEMORY_KIND_CORE, content="no"),
            update_mask=field_mask_pb2.FieldMask(paths=["importance", "kind", "associations"]),
        )
    )
    assert updated.memory.importance == pytest.approx(0.9)
    assert updated.memory.kind == m.MEMORY_KIND_CORE
    assert (updated.memory.content, list(updated.memory.associations)) == ("likes tea", [])
    await fails(
        memory.UpdateMemory(
            pb.UpdateMemoryRequest(
                memory=m.Memory(name=made.name),
                update_mask=field_mask_pb2.FieldMask(paths=["content"]),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "update_mask.paths",
    )
    await memory.DeleteMemory(pb.DeleteMemoryRequest(name=made.name))
    for call in (
        memory.GetMemory(pb.GetMemoryRequest(name=made.name)),
        memory.DeleteMemory(pb.DeleteMemoryRequest(name=made.name)),
        memory.UpdateMemory(
            pb.UpdateMemoryRequest(
                memory=m.Memory(name=made.name),
                update_mask=field_mask_pb2.FieldMask(paths=["importance"]),
            )
        ),
    ):
        info = await fails(call, grpc.StatusCode.NOT_FOUND, "MEMORY_NOT_FOUND")
        assert info.metadata["name"] == made.name
    await memory.DeleteMemory(pb.DeleteMemoryRequest(name=made.name, allow_missing=True))
    await fails(
        memory.GetMemory(pb.GetMemoryRequest(name="agents/a1/notes/x")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "name",
    )


async def test_precomputed_embedding_and_mismatch(memory: Stub) -> None:
    vec = m.Embedding(model="bench/e8", values=[3, 4, 0, 0, 0, 0, 0, 0])
    made = await memory.CreateMemory(
        pb.CreateMemoryRequest(parent="agents/a1", memory=m.Memory(content="x"), embedding=vec)
    )
    assert (made.memory.embedding_model, made.memory.embedding_dimension) == ("bench/e8", 8)
    for call in (
        memory.CreateMemory(create("text needs the service embedder")),
        memory.CreateMemory(
            pb.CreateMemoryRequest(
                parent="agents/a1",
                memory=m.Memory(content="x"),
                embedding=m.Embedding(model="bench/e8", values=[1, 0]),
            )
        ),
        memory.RecallMemories(pb.RecallMemoriesRequest(parent="agents/a1", text="x")),
    ):
        info = await fails(call, grpc.StatusCode.FAILED_PRECONDITION, "EMBEDDING_MISMATCH")
        assert info.metadata["expected_model"] == "bench/e8"
    got = await memory.RecallMemories(pb.RecallMemoriesRequest(parent="agents/a1", embedding=vec))
    assert got.results[0].similarity == pytest.approx(1.0)
    assert got.embedding_model == "bench/e8"


async def test_reembed_migrates_to_the_current_embedder(memory: Stub) -> None:
    vec = m.Embedding(model="old/e2", values=[1, 0])
    for text in ("green tea", "stock market"):
        await memory.CreateMemory(
            pb.CreateMemoryRequest(parent="agents/a1", memory=m.Memory(content=text), embedding=vec)
        )
    done = await memory.ReembedMemories(
        pb.ReembedMemoriesRequest(parent="agents/a1", request_id="e1")
    )
    assert (done.reembedded_count, done.embedding_model, done.embedding_dimension) == (
        2,
        "test/hashing-384",
        384,
    )
    again = await memory.ReembedMemories(
        pb.ReembedMemoriesRequest(parent="agents/a1", request_id="e1")
    )
    assert again == done
    got = await memory.RecallMemories(pb.RecallMemoriesRequest(parent="agents/a1", text="tea"))
    assert got.results[0].memory.content == "green tea"
    persona = await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))
    assert persona.persona.embedding_model == "test/hashing-384"


# recall


async def seed(memory: Stub) -> dict[str, str]:
    names = {}
    specs = [
        ("green tea in the morning", m.MEMORY_KIND_CORE, 0.9, 1.0),
        ("the stock market crashed", m.MEMORY_KIND_EVENT, 0.2, 0.9),
        ("bob said tea is overrated", m.MEMORY_KIND_INTERACTION, 0.5, 0.1),
        ("posted about solana fees", m.MEMORY_KIND_POST, 0.4, 1.0),
    ]
    for text, kind, importance, trust in specs:
        made = await memory.CreateMemory(
            create(text, kind=kind, importance=importance, provenance=m.Provenance(trust=trust))
        )
        names[text] = made.memory.name
    return names


async def test_recall_ranks_by_meaning_and_reports_score_parts(memory: Stub) -> None:
    await seed(memory)
    got = await memory.RecallMemories(
        pb.RecallMemoriesRequest(parent="agents/a1", text="tea", top_k=2)
    )
    assert len(got.results) == 2
    assert {x.memory.content for x in got.results} == {
        "green tea in the morning",
        "bob said tea is overrated",
    }
    for x in got.results:
        parts = 0.7 * x.similarity + 0.15 * x.recency + 0.15 * x.importance
        assert x.score == pytest.approx(parts, abs=1e-5)
        assert 0.99 < x.recency <= 1.0
    assert [x.score for x in got.results] == sorted((x.score for x in got.results), reverse=True)


async def test_recall_filters(memory: Stub) -> None:
    await seed(memory)

    async def recall(**kw) -> set[str]:
        got = await memory.RecallMemories(
            pb.RecallMemoriesRequest(parent="agents/a1", text="tea", **kw)
        )
        return {x.memory.content for x in got.results}

    assert await recall(kinds=[m.MEMORY_KIND_EVENT, m.MEMORY_KIND_POST]) == {
        "the stock market crashed",
        "posted about solana fees",
    }
    assert "bob said tea is overrated" not in await recall(min_trust=0.5)
    assert await recall(min_importance=0.8) == {"green tea in the morning"}
    future = timestamp_pb2.Timestamp(seconds=NOW.seconds + 3600)
    assert await recall(create_time_after=future) == set()
    assert len(await recall(create_time_before=future)) == 4
    assert len(await recall(top_k=100)) == 4


async def test_recall_weights_and_half_life(memory: Stub) -> None:
    old = timestamp_pb2.Timestamp(seconds=NOW.seconds - 72 * 3600)
    await memory.CreateMemory(create("old tea", create_time=old, importance=1.0))
    await memory.CreateMemory(create("new coffee", importance=0.0))
    recency_only = await memory.RecallMemories(
        pb.RecallMemoriesRequest(
            parent="agents/a1",
            text="tea",
            weights=pb.RecallWeights(similarity=0, recency=1, importance=0),
        )
    )
    assert [x.memory.content for x in recency_only.results] == ["new coffee", "old tea"]
    assert recency_only.results[1].recency == pytest.approx(0.5, abs=1e-3)
    short = await memory.RecallMemories(
        pb.RecallMemoriesRequest(
            parent="agents/a1",
            text="tea",
            recency_half_life=duration_pb2.Duration(seconds=36 * 3600),
        )
    )
    old_hit = next(x for x in short.results if x.memory.content == "old tea")
    assert old_hit.recency == pytest.approx(0.25, abs=1e-3)


async def test_recall_follows_writes(memory: Stub) -> None:
    names = await seed(memory)

    async def top() -> str:
        got = await memory.RecallMemories(
            pb.RecallMemoriesRequest(parent="agents/a1", text="tea", top_k=1)
        )
        return got.results[0].memory.content

    assert await top() == "green tea in the morning"
    await memory.DeleteMemory(pb.DeleteMemoryRequest(name=names["green tea in the morning"]))
    assert await top() == "bob said tea is overrated"
    await memory.CreateMemory(create("tea tea tea", importance=1.0))
    assert await top() == "tea tea tea"


async def test_recall_bad_input(memory: Stub) -> None:
    cases = [
        (pb.RecallMemoriesRequest(parent="agents/a1"), "query"),
        (pb.RecallMemoriesRequest(parent="agents/a1", text=""), "text"),
        (pb.RecallMemoriesRequest(parent="agents/a1", text="x", top_k=101), "top_k"),
        (pb.RecallMemoriesRequest(parent="agents/a1", text="x", top_k=-1), "top_k"),
        (pb.RecallMemoriesRequest(parent="agents/a1", text="x", min_trust=math.nan), "min_trust"),
        (
            pb.RecallMemoriesRequest(
                parent="agents/a1",
                text="x",
                weights=pb.RecallWeights(similarity=0, recency=0, importance=0),
            ),
            "weights",
        ),
        (
            pb.RecallMemoriesRequest(
                parent="agents/a1", text="x", recency_half_life=duration_pb2.Duration(seconds=0)
            ),
            "recency_half_life",
        ),
    ]
    for req, field in cases:
        await fails(
            memory.RecallMemories(req), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", field
        )


async def test_recall_on_an_empty_persona_is_empty(memory: Stub) -> None:
    got = await memory.RecallMemories(pb.RecallMemoriesRequest(parent="agents/a1", text="tea"))
    assert list(got.results) == []
    assert got.persona.name == "agents/a1"


async def test_recall_returns_the_persona_state(memory: Stub) -> None:
    await memory.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", valence_delta=0.5))
    req = create("tea post", kind=m.MEMORY_KIND_POST)
    req.last_post_time.CopyFrom(timestamp_pb2.Timestamp(seconds=NOW.seconds - 5))
    await memory.CreateMemory(req)
    got = await memory.RecallMemories(pb.RecallMemoriesRequest(parent="agents/a1", text="tea"))
    state = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert [x.memory.content for x in got.results] == ["tea post"]
    assert got.persona == state
    assert got.persona.mood.valence == 0.5
    assert got.persona.last_post_time.seconds == NOW.seconds - 5
    assert got.embedding_model == state.embedding_model != ""


# budgets


async def budgeted(memory: Stub, budget: int) -> None:
    await memory.UpdatePersonaState(
        pb.UpdatePersonaStateRequest(
            persona=p.Persona(name="agents/a1", memory_budget=budget),
            update_mask=field_mask_pb2.FieldMask(paths=["memory_budget"]),
        )
    )


async def test_creates_over_budget_consolidate_automatically(memory: Stub) -> None:
    await budgeted(memory, 10)
    await memory.CreateMemory(create("i am a1", kind=m.MEMORY_KIND_CORE, importance=0.0))
    for i in range(12):
        await memory.CreateMemory(create(f"event {i}", importance=0.6))
    persona = (await memory.GetPersona(pb.GetPersonaRequest(name="agents/a1"))).persona
    assert persona.memory_count <= 10
    left = await contents(memory)
    assert "i am a1" in left  # core is kept even with importance 0
    summaries = [
        x
        for x in (
            await memory.ListMemories(pb.ListMemoriesRequest(parent="agents/a1", page_size=50))
        ).memories
        if x.provenance.channel == m.PROVENANCE_CHANNEL_CONSOLIDATION
    ]
    assert summaries
    assert summaries[0].kind == m.MEMORY_KIND_LONG_TERM
    assert summaries[0].metadata["consolidated"] == "true"


async def test_consolidate_merges_and_prunes_and_is_idempotent(memory: Stub) -> None:
    for i in range(6):
        await memory.CreateMemory(create(f"note {i}", importance=0.1 if i < 3 else 0.5))
    req = pb.ConsolidateMemoriesRequest(parent="agents/a1", target_count=2, request_id="c1")
    done = await memory.ConsolidateMemories(req)
    assert (done.pruned_count, done.merged_count) == (3, 2)
    assert done.memory_count == 2
    assert done.summary.content == "note 3\nnote 4"
    assert done.summary.provenance.channel == m.PROVENANCE_CHANNEL_CONSOLIDATION
    assert len(done.summary.content) <= 8_000
    assert await memory.ConsolidateMemories(req) == done
    noop = await memory.ConsolidateMemories(pb.ConsolidateMemoriesRequest(parent="agents/a1"))
    assert (noop.merged_count, noop.pruned_count, noop.memory_count) == (0, 0, 2)
    await fails(
        memory.ConsolidateMemories(
            pb.ConsolidateMemoriesRequest(parent="agents/a1", target_count=-1)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "target_count",
    )


async def test_core_memories_cannot_exceed_the_budget(memory: Stub) -> None:
    await budgeted(memory, 2)
    for i in range(2):
        await memory.CreateMemory(create(f"core {i}", kind=m.MEMORY_KIND_CORE))
    await fails(
        memory.CreateMemory(create("one more")),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "MEMORY_BUDGET_EXHAUSTED",
    )


# relationships


async def test_record_interaction_accumulates_clamps_and_is_idempotent(memory: Stub) -> None:
    name = "agents/a1/relationships/Bob_X"
    for i in range(22):
        await memory.RecordInteraction(
            pb.RecordInteractionRequest(
                name=name,
                sentiment_delta=0.3,
                familiarity_delta=0.1,
                trust_delta=-0.2,
                note=f"n{i}",
            )
        )
    req = pb.RecordInteractionRequest(name=name, note="once", request_id="i1")
    first, again = await memory.RecordInteraction(req), await memory.RecordInteraction(req)
    rel = again.relationship
    assert rel == first.relationship
    assert rel.name == "agents/a1/relationships/bob_x"
    assert (rel.sentiment, rel.trust, rel.interaction_count) == (1.0, 0.0, 23)
    assert rel.familiarity == pytest.approx(1.0)
    assert list(rel.notes)[:3] == ["once", "n21", "n20"]
    assert len(rel.notes) == 20
    assert rel.last_interaction_time.seconds >= NOW.seconds


async def test_relationship_get_update_list(memory: Stub) -> None:
    await fails(
        memory.GetRelationship(pb.GetRelationshipRequest(name="agents/a1/relationships/amy")),
        grpc.StatusCode.NOT_FOUND,
        "RELATIONSHIP_NOT_FOUND",
    )
    for who in ("carl", "amy", "bob"):
        await memory.UpdateRelationship(
            pb.UpdateRelationshipRequest(
                relationship=r.Relationship(
                    name=f"agents/a1/relationships/{who}", sentiment=-0.5, trust=0.8, notes=["met"]
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["sentiment", "notes"]),
            )
        )
    got = await memory.GetRelationship(
        pb.GetRelationshipRequest(name="agents/a1/relationships/amy")
    )
    assert (got.relationship.sentiment, got.relationship.trust) == (-0.5, 0.0)
    assert list(got.relationship.notes) == ["met"]
    names, token = [], ""
    while True:
        page = await memory.ListRelationships(
            pb.ListRelationshipsRequest(parent="agents/a1", page_size=2, page_token=token)
        )
        names += [x.name.rsplit("/", 1)[1] for x in page.relationships]
        token = page.next_page_token
        if not token:
            break
    assert names == ["amy", "bob", "carl"]
    await fails(
        memory.UpdateRelationship(
            pb.UpdateRelationshipRequest(
                relationship=r.Relationship(name="agents/a1/relationships/amy", sentiment=2),
                update_mask=field_mask_pb2.FieldMask(paths=["sentiment"]),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        "relationship.sentiment",
    )


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("EMBEDDER_UNAVAILABLE", grpc.StatusCode.UNAVAILABLE),
        ("EMBEDDER_REJECTED", grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_embedder_failures(serve, broken_embedders, reason, code) -> None:
    async with serve(embedder=broken_embedders[reason]) as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1"))
        await fails(stub.CreateMemory(create("likes tea")), code, reason)
        assert await contents(stub) == []


# the same contract over MongoDB


@pytest.mark.mongo
async def test_golden_path_over_mongodb(serve, mongo_uri: str) -> None:
    from puppet_memory.store.mongo import MongoStore

    async with serve(store=MongoStore(mongo_uri, "contract_golden")) as stub:
        await stub.CreatePersona(pb.CreatePersonaRequest(persona_id="a1", allow_existing=True))
        names = await seed(stub)
        req = create("likes tea")
        req.request_id = "r1"
        assert (await stub.CreateMemory(req)).memory.name == (
            await stub.CreateMemory(req)
        ).memory.name
        assert len(await contents(stub)) == 5
        got = await stub.RecallMemories(
            pb.RecallMemoriesRequest(parent="agents/a1", text="green tea")
        )
        assert got.results[0].memory.name == names["green tea in the morning"]
        mood = await stub.ShiftMood(pb.ShiftMoodRequest(name="agents/a1", valence_delta=2))
        assert mood.persona.mood.valence == 1.0
        rel = await stub.RecordInteraction(
            pb.RecordInteractionRequest(name="agents/a1/relationships/bob", trust_delta=0.5)
        )
        assert rel.relationship.interaction_count == 1
        done = await stub.ConsolidateMemories(
            pb.ConsolidateMemoriesRequest(parent="agents/a1", target_count=2)
        )
        assert done.memory_count == 2
        await fails(
            stub.GetMemory(pb.GetMemoryRequest(name="agents/a1/memories/gone")),
            grpc.StatusCode.NOT_FOUND,
            "MEMORY_NOT_FOUND",
        )
        await stub.DeletePersona(pb.DeletePersonaRequest(name="agents/a1"))


async def test_concurrent_creates_keep_the_index_consistent(memory: Stub) -> None:
    await asyncio.gather(*(memory.CreateMemory(create(f"tea {i}")) for i in range(30)))
    got = await memory.RecallMemories(
        pb.RecallMemoriesRequest(parent="agents/a1", text="tea", top_k=100)
    )
    assert len(got.results) == 30
    assert np.isfinite([x.score for x in got.results]).all()


async def test_sqlite_store_closes_cleanly(tmp_path) -> None:
    store = SqliteStore(tmp_path / "x.sqlite3")
    await store.open()
    await store.close()
    await store.close()


async def test_a_repeated_recall_query_is_embedded_once(memory: Stub, embedder: Any) -> None:
    """Recall reuses the vector of a recent query text instead of embedding it again."""
    await memory.CreateMemory(create("green tea"))
    before = embedder.calls
    for _ in range(3):
        found = await memory.RecallMemories(
            pb.RecallMemoriesRequest(parent="agents/a1", text="tea?")
        )
        assert [x.memory.content for x in found.results] == ["green tea"]
    assert embedder.calls == before + 1
