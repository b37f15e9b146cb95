"""A BERT encoder with mean pooling, as an ONNX graph built in memory from safetensors weights."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

F32 = npt.NDArray[np.float32]
_OPSET = 17  # the first with LayerNormalization
# Added to the attention scores of padding keys: its exp() is exactly 0 in float32.
_MASKED = -1e9
# Tensors smaller than this stay inside the graph (shape inference reads them); onnxruntime takes
# the weights as external initializers, straight from the numpy arrays, with no protobuf copy.
_INLINE_BYTES = 128


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The handful of hyper-parameters the graph needs, read from ``config.json``."""

    hidden: int
    heads: int
    layers: int
    eps: float

    @classmethod
    def read(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {raw['hidden_act']!r}")
        return cls(
            hidden=int(raw["hidden_size"]),
            heads=int(raw["num_attention_heads"]),
            layers=int(raw["num_hidden_layers"]),
            eps=float(raw["layer_norm_eps"]),
        )


@dataclass(frozen=True, slots=True)
class BertGraph:
    """The ONNX model and the weights it names as external initializers."""

    model: ModelProto
    weights: dict[str, npt.NDArray[Any]]


class BertEncoder:
    """Token ids in, L2-normalised mean-pooled sentence vectors out, on onnxruntime.

    One session, safe to run from several threads at once. ``threads`` is its intra-op thread
    count; those threads never spin while idle (spinning burns the cores that concurrent runs
    and the service's event loop need).
    """

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        self.config = BertConfig.read(model_dir / "config.json")
        graph = build_graph(self.config, load_file(str(model_dir / "model.safetensors")))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.add_external_initializers(
            list(graph.weights),
            [ort.OrtValue.ortvalue_from_numpy(array) for array in graph.weights.values()],
        )
        self._session = ort.InferenceSession(
            graph.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    @property
    def dimension(self) -> int:
        return self.config.hidden

    def encode(self, batch: Sequence[Sequence[int]]) -> F32:
        """Embed one batch of token-id lists (special tokens included); shape (len, hidden)."""
        size, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((size, length), dtype=np.int64)
        mask = np.zeros((size, length), dtype=np.int64)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        vectors: F32 = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return vectors


def build_graph(config: BertConfig, stored: dict[str, npt.NDArray[Any]]) -> BertGraph:
    """The encoder, mean pooling and L2 normalisation as one ONNX graph.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x length, both axes dynamic);
    output ``embeddings`` (float32, batch x hidden). Plain ONNX ops, in the shapes onnxruntime's
    optimizer fuses: bias + Erf GELU into BiasGelu, the query-key product and its scale into
    FusedMatMul. (Its contrib Attention and SkipLayerNormalization ops, written in directly, were
    no faster here: the six layers' MatMuls take three quarters of the time either way.)
    """
    builder = _Builder(config, {k.removeprefix("bert."): v for k, v in stored.items()})
    return BertGraph(builder.model(), builder.external)


class _Builder:
    def __init__(self, config: BertConfig, weights: dict[str, npt.NDArray[Any]]) -> None:
        self.config = config
        self.weights = weights
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.external: dict[str, npt.NDArray[Any]] = {}
        self._names: set[str] = set()

    def model(self) -> ModelProto:
        c, w = self.config, self.weights
        # Every sentence is a single segment, so the type-0 embedding folds into positions.
        positions = (
            w["embeddings.position_embeddings.weight"]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        words = self.op(
            "Gather", self.const("word", w["embeddings.word_embeddings.weight"]), "input_ids"
        )
        length = self.op("Shape", "input_ids", start=1, end=2)
        zero, axis0 = self.ints("zero", [0]), self.ints("axis0", [0])
        position = self.op("Slice", self.const("position", positions), zero, length, axis0)
        x = self.layer_norm(self.op("Add", words, position), "embeddings.LayerNorm")
        mask = self.op("Cast", "attention_mask", to=TensorProto.FLOAT)
        # (1 - mask) * -1e9 as (batch, 1, 1, length): added to every head's scores.
        bias = self.op(
            "Mul", self.op("Sub", self.scalar("one", 1.0), mask), self.scalar("masked", _MASKED)
        )
        bias = self.op("Unsqueeze", bias, self.ints("axes12", [1, 2]))
        for i in range(c.layers):
            x = self.block(x, bias, f"encoder.layer.{i}.")
        # Mean pooling then L2 normalisation: the division by the token count cancels out.
        masked = self.op("Mul", x, self.op("Unsqueeze", mask, self.ints("axis2", [2])))
        pooled = self.op("ReduceSum", masked, self.ints("axis1", [1]), keepdims=0)
        self.nodes.append(
            helper.make_node("LpNormalization", [pooled], ["embeddings"], axis=1, p=2)
        )
        dynamic = ["batch", "length"]
        graph = helper.make_graph(
            self.nodes,
            "bert_mean_pooled",
            [
                helper.make_tensor_value_info("input_ids", TensorProto.INT64, dynamic),
                helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dynamic),
            ],
            [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", c.hidden])],
            self.initializers,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])

    def block(self, x: str, bias: str, prefix: str) -> str:
        c = self.config
        head = c.hidden // c.heads
        split, merge = (
            self.ints("split", [0, 0, c.heads, head]),
            self.ints("merge", [0, 0, c.hidden]),
        )

        def heads(name: str, perm: list[int]) -> str:
            projected = self.dense(x, prefix + "attention.self." + name)
            return self.op("Transpose", self.op("Reshape", projected, split), perm=perm)

        query = heads("query", [0, 2, 1, 3])
        key = heads("key", [0, 2, 3, 1])
        value = heads("value", [0, 2, 1, 3])
        scores = self.op(
            "Div", self.op("MatMul", query, key), self.scalar("sqrt_head", math.sqrt(head))
        )
        probs = self.op("Softmax", self.op("Add", scores, bias), axis=-1)
        context = self.op("Transpose", self.op("MatMul", probs, value), perm=[0, 2, 1, 3])
        attended = self.dense(self.op("Reshape", context, merge), prefix + "attention.output.dense")
        x = self.layer_norm(self.op("Add", attended, x), prefix + "attention.output.LayerNorm")
        inner = self.gelu(self.dense(x, prefix + "intermediate.dense"))
        out = self.dense(inner, prefix + "output.dense")
        return self.layer_norm(self.op("Add", out, x), prefix + "output.LayerNorm")

    def dense(self, x: str, name: str) -> str:
        weight = self.const(name + ".weight", self.weights[name + ".weight"].T)
        product = self.op("MatMul", x, weight)
        return self.op("Add", product, self.const(name + ".bias", self.weights[name + ".bias"]))

    def layer_norm(self, x: str, name: str) -> str:
        return self.op(
            "LayerNormalization",
            x,
            self.const(name + ".weight", self.weights[name + ".weight"]),
            self.const(name + ".bias", self.weights[name + ".bias"]),
            axis=-1,
            epsilon=self.config.eps,
        )

    def gelu(self, x: str) -> str:
        """x * (1 + erf(x / sqrt 2)) / 2, the exact GELU BERT was trained with."""
        erf = self.op("Erf", self.op("Div", x, self.scalar("sqrt2", math.sqrt(2.0))))
        scaled = self.op("Mul", x, self.op("Add", erf, self.scalar("one", 1.0)))
        return self.op("Mul", scaled, self.scalar("half", 0.5))

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        output = f"{kind.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        if name in self._names:
            return name
        self._names.add(name)
        if value.nbytes < _INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(value, name))
            return name
        tensor = TensorProto(
            name=name,
            dims=value.shape,
            data_type=helper.np_dtype_to_tensor_dtype(value.dtype),
            data_location=TensorProto.EXTERNAL,
        )
        tensor.external_data.add(key="location", value="memory")
        self.initializers.append(tensor)
        self.external[name] = np.ascontiguousarray(value)
        return name

    def scalar(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    def ints(self, name: str, values: list[int]) -> str:
        return self.const(name, np.array(values, dtype=np.int64))
