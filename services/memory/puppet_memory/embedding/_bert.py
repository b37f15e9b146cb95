"""A float32 numpy forward pass of a BERT encoder with mean pooling (no torch)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file

F32 = npt.NDArray[np.float32]
_MASKED = np.float32(-1e9)
# Abramowitz & Stegun 7.1.26: |erf error| <= 1.5e-7, below float32 resolution near 1.
# The coefficients carry the GELU's 1/2 so the polynomial yields erfc(z) / 2 directly.
_ERF_A = tuple(
    np.float32(a / 2) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)
_ERF_P = np.float32(0.3275911 / math.sqrt(2))
# exp(-x^2/2) is kept above float32's denormals (slow on x86); GELU there is max(x, 0) anyway.
_SQUARE_CAP = np.float32(160.0)
# Elements per GELU slice: 3 scratch buffers + the slice itself stay well inside a 1 MB L2.
_GELU_SLICE = 32 * 1536


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: F32  # (hidden, 3*hidden), the query part pre-scaled by 1/sqrt(head_dim)
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1_g: F32
    ln1_b: F32
    up_w: F32
    up_b: F32
    down_w: F32
    down_b: F32
    ln2_g: F32
    ln2_b: F32


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The handful of hyper-parameters the forward pass needs, read from ``config.json``."""

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


class BertEncoder:
    """Token ids in, L2-normalised mean-pooled sentence vectors out; thread-safe (no state)."""

    def __init__(self, model_dir: Path) -> None:
        self.config = BertConfig.read(model_dir / "config.json")
        stored: dict[str, F32] = load_file(str(model_dir / "model.safetensors"))
        weights = {k.removeprefix("bert."): v for k, v in stored.items()}
        self._word = _f32(weights["embeddings.word_embeddings.weight"])
        # Every sentence is a single segment, so the type-0 embedding folds into positions.
        self._position = _f32(
            weights["embeddings.position_embeddings.weight"]
            + weights["embeddings.token_type_embeddings.weight"][0]
        )
        self._emb_ln = (
            _f32(weights["embeddings.LayerNorm.weight"]),
            _f32(weights["embeddings.LayerNorm.bias"]),
        )
        self._layers = [self._layer(weights, i) for i in range(self.config.layers)]

    @property
    def dimension(self) -> int:
        return self.config.hidden

    def _layer(self, w: dict[str, F32], i: int) -> _Layer:
        p = f"encoder.layer.{i}."
        scale = np.float32(1 / math.sqrt(self.config.hidden // self.config.heads))
        att = p + "attention.self."
        qkv_w = np.concatenate(
            [w[att + "query.weight"] * scale, w[att + "key.weight"], w[att + "value.weight"]]
        )
        qkv_b = np.concatenate(
            [w[att + "query.bias"] * scale, w[att + "key.bias"], w[att + "value.bias"]]
        )
        return _Layer(
            qkv_w=_f32(qkv_w.T),
            qkv_b=_f32(qkv_b),
            out_w=_f32(w[p + "attention.output.dense.weight"].T),
            out_b=_f32(w[p + "attention.output.dense.bias"]),
            ln1_g=_f32(w[p + "attention.output.LayerNorm.weight"]),
            ln1_b=_f32(w[p + "attention.output.LayerNorm.bias"]),
            up_w=_f32(w[p + "intermediate.dense.weight"].T),
            up_b=_f32(w[p + "intermediate.dense.bias"]),
            down_w=_f32(w[p + "output.dense.weight"].T),
            down_b=_f32(w[p + "output.dense.bias"]),
            ln2_g=_f32(w[p + "output.LayerNorm.weight"]),
            ln2_b=_f32(w[p + "output.LayerNorm.bias"]),
        )

    def encode(self, batch: Sequence[Sequence[int]]) -> F32:
        """Embed one batch of token-id lists (special tokens included); shape (len, hidden)."""
        size, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((size, length), dtype=np.int64)
        mask = np.zeros((size, length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        embedded = self._word[ids.reshape(-1)].reshape(size, length, -1)
        embedded += self._position[:length]
        x: F32 = embedded.reshape(size * length, -1)
        _layer_norm(x, *self._emb_ln, self.config.eps)
        bias = None if mask.all() else ((1.0 - mask) * _MASKED)[:, None, None, :]
        for layer in self._layers:
            x = self._block(x, layer, size, length, bias)
        pooled: F32 = np.einsum("bld,bl->bd", x.reshape(size, length, -1), mask)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled

    def _block(self, x: F32, layer: _Layer, size: int, length: int, bias: F32 | None) -> F32:
        heads, hidden = self.config.heads, self.config.hidden
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        qkv = qkv.reshape(size, length, 3, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
        scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
        if bias is not None:
            scores += bias
        _softmax(scores)
        context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(size * length, hidden)
        attended = context @ layer.out_w
        attended += layer.out_b
        attended += x
        _layer_norm(attended, layer.ln1_g, layer.ln1_b, self.config.eps)
        inner = attended @ layer.up_w
        _bias_gelu(inner, layer.up_b)
        out: F32 = inner @ layer.down_w
        out += layer.down_b
        out += attended
        _layer_norm(out, layer.ln2_g, layer.ln2_b, self.config.eps)
        return out


def _f32(a: npt.NDArray[Any]) -> F32:
    return np.ascontiguousarray(a, dtype=np.float32)


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float) -> None:
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var /= x.shape[-1]
    var += eps
    np.sqrt(var, out=var)
    x /= var
    x *= gamma
    x += beta


def _softmax(scores: F32) -> None:
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)


def _bias_gelu(x: F32, bias: F32) -> None:
    """x = GELU(x + bias) in place, exact (erf) form: max(x, 0) - |x| * erfc(|x| / sqrt 2) / 2.

    Works through cache-sized slices with three scratch buffers: a dozen numpy passes over a
    slice that stays in L2 cost far less than over the whole (tokens, 1536) activation.
    """
    width = x.shape[-1]
    rows = max(1, _GELU_SLICE // width)
    magnitude, t, erfc = (np.empty((rows, width), dtype=np.float32) for _ in range(3))
    for start in range(0, x.shape[0], rows):
        xs = x[start : start + rows]
        n = xs.shape[0]
        m, tt, e = magnitude[:n], t[:n], erfc[:n]
        xs += bias
        np.abs(xs, out=m)
        np.multiply(m, _ERF_P, out=tt)
        tt += 1.0
        np.reciprocal(tt, out=tt)
        np.multiply(tt, _ERF_A[0], out=e)
        for a in _ERF_A[1:]:
            e += a
            e *= tt
        np.square(m, out=tt)
        np.minimum(tt, _SQUARE_CAP, out=tt)
        tt *= -0.5
        np.exp(tt, out=tt)
        e *= tt
        e *= m
        np.maximum(xs, 0.0, out=xs)
        xs -= e
