"""How much GPU memory a run needs per GPU, computed from the model's shape (no GPU needed).

``bayling-train memory`` prints the table of docs/TRAINING.md. The estimate adds up what the
loop of :mod:`bayling_train.sft` keeps on each GPU:

- **sharded state** (FSDP2 divides it by the GPU count): full fine-tuning keeps fp32 weights,
  fp32 gradients and AdamW's two fp32 moments (16 bytes a parameter); LoRA keeps the frozen
  base in bf16 (2 bytes) and the adapters like full fine-tuning (16 bytes); QLoRA keeps the
  base's linear weights in NF4 with double quantization (4.127 bits) and the rest in bf16, on
  one GPU (this loop does not shard bitsandbytes weights);
- **gathered weights**: the current and the prefetched decoder layer in bf16 with their fp32
  gradients before the reduce-scatter, and the root (embeddings, head), which FSDP2 keeps
  gathered from the forward to the backward pass;
- **activations**: with gradient checkpointing, every layer's input (bf16) plus one layer's
  full activations while it is recomputed; without, every layer's full activations. A layer's
  activations are taken as ``(10·d + 4·f)`` values a token (flash/SDPA attention stores no
  ``S x S`` matrix), a rule of thumb for LLaMA blocks;
- **logits**: bf16 logits, their fp32 copy for the cross-entropy and its fp32 gradient
  (10 bytes per token and vocabulary entry) -- large for Llama 3's 128k vocabulary;
- **overhead**: 1.5 GiB for the CUDA context, the allocator's fragmentation and NCCL buffers.

It is an estimate to choose GPUs and ``micro_batch_size`` with, not a measurement: real peaks
come from ``bayling-train bench`` (``torch.cuda.max_memory_allocated``) on the GPU itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from bayling_local.errors import UsageError

from .bench import SHAPES, Shape, parameter_count

GIB = 1024**3
OVERHEAD = 1.5 * GIB
NF4_BYTES = 4.127 / 8  # NF4 with double-quantized scales, as bitsandbytes stores it


@dataclass(frozen=True)
class Estimate:
    shape: str
    method: str
    gpus: int
    parts: dict[str, float]  # bytes per GPU

    @property
    def total(self) -> float:
        return sum(self.parts.values())


def lora_parameters(shape: Shape, r: int) -> int:
    """Adapters on q, k, v, o, gate, up and down: r x (inputs + outputs) for each."""
    d, f = shape.hidden_size, shape.intermediate_size
    kv = d // shape.num_attention_heads * shape.num_key_value_heads
    return r * (9 * d + 2 * kv + 3 * f) * shape.num_hidden_layers


def estimate(
    shape_name: str,
    method: str,
    *,
    gpus: int = 1,
    seq_len: int = 2048,
    micro_batch_size: int = 1,
    checkpointing: bool = True,
    lora_r: int = 64,
) -> Estimate:
    if shape_name not in SHAPES:
        raise UsageError(f"unknown shape {shape_name!r}: one of {', '.join(SHAPES)}")
    if method == "qlora" and gpus != 1:
        raise UsageError("qlora runs on one GPU (bitsandbytes weights are not sharded)")
    shape = SHAPES[shape_name]
    _, total = parameter_count(shape)
    d, f, layers, v = (
        shape.hidden_size,
        shape.intermediate_size,
        shape.num_hidden_layers,
        shape.vocab_size,
    )
    root = 2 * v * d  # input embedding and head (untied)
    layer = (total - root - d) / layers
    adapters = lora_parameters(shape, lora_r) if method != "full" else 0
    if method == "full":
        state: float = 16 * total
    elif method == "lora":
        state = 2 * total + 16 * adapters
    else:
        state = NF4_BYTES * (total - root) + 2 * root + 16 * adapters
    tokens = seq_len * micro_batch_size
    per_layer_activations = tokens * (10 * d + 4 * f) * 2
    if checkpointing:
        activations = layers * tokens * d * 2 + per_layer_activations
    else:
        activations = layers * per_layer_activations
    gathered = 0.0
    if method != "qlora":
        grads = 4 if method == "full" else 0
        gathered = 2 * layer * (2 + grads) + root * (2 + grads)
        if gpus == 1:
            gathered = 2 * layer * 2  # one process: the sharded weights are the whole weights
    parts = {
        "state": state / gpus,
        "gathered": gathered,
        "activations": float(activations),
        "logits": tokens * v * 10.0,
        "overhead": OVERHEAD,
    }
    return Estimate(shape_name, method, gpus, parts)


# The rows of docs/TRAINING.md: the BayLing-2 sizes with the recipes' settings.
TABLE = (
    ("BayLing-2-7B", "llama2-7b"),
    ("BayLing-2-Llama-3-8B", "llama3-8b"),
    ("BayLing-2-13B", "llama2-13b"),
)
SETUPS = (
    ("full", 8, 2),
    ("full", 16, 2),
    ("lora", 1, 4),
    ("lora", 8, 4),
    ("qlora", 1, 4),
)


def table(seq_len: int = 2048, checkpointing: bool = True) -> str:
    """A Markdown table: GiB per GPU for each BayLing size and setup."""
    header = ["model"] + [f"{method} x{gpus} (mb {micro})" for method, gpus, micro in SETUPS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label, shape in TABLE:
        cells = [label]
        for method, gpus, micro in SETUPS:
            result = estimate(
                shape,
                method,
                gpus=gpus,
                seq_len=seq_len,
                micro_batch_size=micro,
                checkpointing=checkpointing,
            )
            cells.append(f"{result.total / GIB:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
