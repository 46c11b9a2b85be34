"""The Hugging Face -> GGUF tensor plan: names, layouts and output types, one tensor at a time.

The name map is a table (as gguf-py's ``tensor_mapping.py`` is): each row maps a Hugging Face
name pattern to a llama.cpp tensor name and says whether the rows are permuted for llama.cpp's
rotary layout. Hugging Face stores each attention head's rotary halves as two blocks
(``x[:d/2]``, ``x[d/2:]``); llama.cpp's LLaMA graph rotates interleaved pairs, so the rows of
the query and key projections are reordered head by head.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
from gguf import GGMLQuantizationType, LlamaFileType
from gguf.quants import quant_shape_to_byte_shape, quantize

from bayling_local.errors import InputError, UsageError

from .checkpoint import LlamaSpec, TensorRef

Permute = Literal["q", "k"] | None

#: Source bytes converted at a time; bounds the converter's memory (see docs/BENCHMARKS.md).
CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class TensorRule:
    """One row of the name map; ``{bid}`` stands for the block (layer) number."""

    hf: str
    gguf: str
    permute: Permute = None


TENSOR_RULES: tuple[TensorRule, ...] = (
    TensorRule("model.embed_tokens.weight", "token_embd.weight"),
    TensorRule("model.norm.weight", "output_norm.weight"),
    TensorRule("lm_head.weight", "output.weight"),
    TensorRule("model.layers.{bid}.input_layernorm.weight", "blk.{bid}.attn_norm.weight"),
    TensorRule("model.layers.{bid}.self_attn.q_proj.weight", "blk.{bid}.attn_q.weight", "q"),
    TensorRule("model.layers.{bid}.self_attn.k_proj.weight", "blk.{bid}.attn_k.weight", "k"),
    TensorRule("model.layers.{bid}.self_attn.v_proj.weight", "blk.{bid}.attn_v.weight"),
    TensorRule("model.layers.{bid}.self_attn.o_proj.weight", "blk.{bid}.attn_output.weight"),
    TensorRule("model.layers.{bid}.self_attn.q_proj.bias", "blk.{bid}.attn_q.bias", "q"),
    TensorRule("model.layers.{bid}.self_attn.k_proj.bias", "blk.{bid}.attn_k.bias", "k"),
    TensorRule("model.layers.{bid}.self_attn.v_proj.bias", "blk.{bid}.attn_v.bias"),
    TensorRule("model.layers.{bid}.self_attn.o_proj.bias", "blk.{bid}.attn_output.bias"),
    TensorRule("model.layers.{bid}.post_attention_layernorm.weight", "blk.{bid}.ffn_norm.weight"),
    TensorRule("model.layers.{bid}.mlp.gate_proj.weight", "blk.{bid}.ffn_gate.weight"),
    TensorRule("model.layers.{bid}.mlp.up_proj.weight", "blk.{bid}.ffn_up.weight"),
    TensorRule("model.layers.{bid}.mlp.down_proj.weight", "blk.{bid}.ffn_down.weight"),
    TensorRule("model.layers.{bid}.mlp.gate_proj.bias", "blk.{bid}.ffn_gate.bias"),
    TensorRule("model.layers.{bid}.mlp.up_proj.bias", "blk.{bid}.ffn_up.bias"),
    TensorRule("model.layers.{bid}.mlp.down_proj.bias", "blk.{bid}.ffn_down.bias"),
)

#: Buffers some checkpoints save that llama.cpp recomputes.
IGNORED = re.compile(r"(^|\.)rotary_emb\.inv_freq$")

_RULE_PATTERNS = tuple(
    (re.compile("^" + re.escape(rule.hf).replace(r"\{bid\}", r"(?P<bid>\d+)") + "$"), rule)
    for rule in TENSOR_RULES
)


# The weights of every transformer block, by their GGUF names (``blk.N.<part>.weight``).
BLOCK_PARTS: tuple[str, ...] = (
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
)


def map_name(hf_name: str) -> tuple[str, TensorRule] | None:
    """The GGUF name of a Hugging Face tensor and its rule; None for ignored buffers."""
    if IGNORED.search(hf_name):
        return None
    for pattern, rule in _RULE_PATTERNS:
        match = pattern.match(hf_name)
        if match:
            bid = match.groupdict().get("bid")
            return rule.gguf.format(bid=bid) if bid is not None else rule.gguf, rule
    raise InputError(f"unexpected tensor {hf_name}: not a plain LLaMA checkpoint")


def permute_rotary(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from Hugging Face's rotary halves to llama.cpp's pairs."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


class OutType(str, Enum):  # noqa: UP042 (str() and f-strings of members stay as they were)
    """Output types ``convert`` writes itself (K-quants and the rest go through ``quantize``)."""

    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"
    Q8_0 = "q8_0"

    @classmethod
    def parse(cls, value: str | OutType) -> OutType:
        try:
            return cls(str(value.value if isinstance(value, OutType) else value).lower())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise UsageError(f"unknown output type {value!r}; choose one of {names}") from None

    @property
    def ggml_type(self) -> GGMLQuantizationType:
        return GGMLQuantizationType[self.name]

    @property
    def file_type(self) -> LlamaFileType:
        return {
            OutType.F32: LlamaFileType.ALL_F32,
            OutType.F16: LlamaFileType.MOSTLY_F16,
            OutType.BF16: LlamaFileType.MOSTLY_BF16,
            OutType.Q8_0: LlamaFileType.MOSTLY_Q8_0,
        }[self]


def output_type(shape: tuple[int, ...], outtype: OutType) -> GGMLQuantizationType:
    """The type one tensor is stored as: vectors stay F32 (as llama.cpp expects for norms),
    and a matrix whose rows do not split into Q8_0 blocks falls back to F16."""
    if len(shape) < 2:
        return GGMLQuantizationType.F32
    if outtype is OutType.Q8_0 and shape[-1] % 32:
        return GGMLQuantizationType.F16
    return outtype.ggml_type


@dataclass(frozen=True)
class TensorPlan:
    """How one GGUF tensor is made: from which source (and delta base), in what layout and type."""

    gguf_name: str
    shape: tuple[int, ...]
    ggml_type: GGMLQuantizationType
    source: TensorRef
    base: TensorRef | None = None
    permute_heads: int | None = None

    @property
    def byte_shape(self) -> tuple[int, ...]:
        return quant_shape_to_byte_shape(self.shape, self.ggml_type)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.byte_shape, dtype=np.int64))

    def _convert(self, data: np.ndarray) -> np.ndarray:
        if self.ggml_type is GGMLQuantizationType.F16:
            out = data.astype(np.float16, copy=False)
        elif self.ggml_type is GGMLQuantizationType.F32:
            out = data.astype(np.float32, copy=False)
        else:
            out = quantize(data.astype(np.float32, copy=False), self.ggml_type)
        return np.ascontiguousarray(out).view(np.uint8).reshape(-1)

    def chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        """The tensor's bytes as stored in the GGUF, in pieces of whole rows.

        Every output type here encodes rows independently, so converting a tensor row block by
        row block gives the same bytes as converting it whole, with memory for one block. Only
        the q/k permutation (rows move between heads) needs the whole tensor, and those are
        the small square attention matrices.
        """
        rows = self.source.rows
        row_bytes = max(1, self.source.nbytes // rows) * (2 if self.base is not None else 1)
        step = max(1, chunk_bytes // row_bytes) if self.permute_heads is None else rows
        for start in range(0, rows, step):
            data = self.source.load_rows(start, start + step)
            if self.base is not None:
                base = self.base.load_rows(start, start + step)
                data = data.astype(np.float32, copy=False) + base.astype(np.float32, copy=False)
            if self.permute_heads is not None:
                data = permute_rotary(data, self.permute_heads)
            yield self._convert(data)

    def produce(self) -> np.ndarray:
        """The whole tensor's GGUF bytes (for tests and small tensors)."""
        return np.concatenate(list(self.chunks())).reshape(self.byte_shape)


def plan_tensors(
    tensors: Mapping[str, TensorRef],
    spec: LlamaSpec,
    outtype: OutType,
    *,
    base: Mapping[str, TensorRef] | None = None,
) -> list[TensorPlan]:
    """Map, check and order every tensor before anything is written.

    Every error a conversion can find in its inputs (unknown tensors, missing layers, a delta
    whose shapes do not match its base) is found here, so a bad input never starts an output.
    """
    plans: list[TensorPlan] = []
    seen: set[str] = set()
    for hf_name in tensors:
        mapped = map_name(hf_name)
        if mapped is None:
            continue
        gguf_name, rule = mapped
        ref = tensors[hf_name]
        base_ref = None
        if base is not None:
            base_ref = base.get(hf_name)
            if base_ref is None:
                raise InputError(
                    f"the base checkpoint has no tensor {hf_name} to apply the delta to"
                )
            if base_ref.shape != ref.shape:
                raise InputError(
                    f"delta tensor {hf_name} has shape {list(ref.shape)} but the base has "
                    f"{list(base_ref.shape)}: this delta does not belong to this base"
                )
        heads = {"q": spec.num_heads, "k": spec.num_kv_heads}.get(rule.permute or "")
        seen.add(gguf_name)
        plans.append(
            TensorPlan(gguf_name, ref.shape, output_type(ref.shape, outtype), ref, base_ref, heads)
        )
    _check_complete(seen, spec, tensors)
    plans.sort(key=_order)
    return plans


def _check_complete(seen: set[str], spec: LlamaSpec, tensors: Mapping[str, TensorRef]) -> None:
    required = ["token_embd.weight", "output_norm.weight"]
    if not spec.tie_word_embeddings:
        required.append("output.weight")
    for bid in range(spec.num_layers):
        required += [f"blk.{bid}.{part}.weight" for part in BLOCK_PARTS]
    missing = [name for name in required if name not in seen]
    if missing:
        raise InputError(
            f"the checkpoint lacks {len(missing)} tensor(s) its config.json needs (first: {missing[0]})"
        )
    extra_layers = [
        n for n in seen if n.startswith("blk.") and int(n.split(".")[1]) >= spec.num_layers
    ]
    if extra_layers:
        raise InputError(
            f"the checkpoint has more layers than config.json says ({spec.num_layers})"
        )
    embed = tensors.get("model.embed_tokens.weight")
    if embed is not None and embed.shape != (spec.vocab_size, spec.hidden_size):
        raise InputError(
            f"embedding shape {list(embed.shape)} does not match config.json "
            f"(vocab {spec.vocab_size}, hidden {spec.hidden_size})"
        )


def _order(plan: TensorPlan) -> tuple[int, int, str]:
    """llama.cpp's usual order: embeddings, blocks in order, then the output head."""
    name = plan.gguf_name
    if name.startswith("blk."):
        return (1, int(name.split(".")[1]), name)
    return (0 if name.startswith("token_embd") else 2, 0, name)
