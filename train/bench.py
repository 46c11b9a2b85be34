"""Training throughput on one device: tokens/s, model FLOPs utilisation, peak memory.

``bayling-train bench`` builds a LLaMA-shaped model with random weights (no download) and
times the training step of :mod:`bayling_train.sft` -- the same loss, optimizer, precision and
gradient checkpointing -- on packed rows of ``--seq-len`` tokens::

    bayling-train bench --all                          # the two headline figures on a GPU
    bayling-train bench --shape llama3-8b --method lora
    bayling-train bench --shape auto --method full     # the largest shape that fits
    bayling-train bench --shape tiny --device cpu --seq-len 128 --steps 2   # a smoke test

MFU counts model FLOPs only (PaLM, appendix B): per token ``6N + 12·L·d·S`` for full
fine-tuning and ``4N + 8·L·d·S`` for LoRA (the frozen weights get no weight gradients), with N
the parameters outside the input embedding, L layers, d the hidden size and S the sequence
length; recomputation for gradient checkpointing is not counted as useful work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bayling_local.errors import UsageError


@dataclass(frozen=True)
class Shape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    rope_theta: float = 10000.0


SHAPES: dict[str, Shape] = {
    "tiny": Shape(128, 344, 2, 4, 2, 1000),
    "llama3.2-1b": Shape(2048, 8192, 16, 32, 8, 128256, 500000.0),
    "llama3.2-3b": Shape(3072, 8192, 28, 24, 8, 128256, 500000.0),
    "llama2-7b": Shape(4096, 11008, 32, 32, 32, 32000),  # BayLing-2-7B
    "llama3-8b": Shape(4096, 14336, 32, 32, 8, 128256, 500000.0),  # BayLing-2-Llama-3-8B
    "llama2-13b": Shape(5120, 13824, 40, 40, 40, 32000),  # BayLing-2-13B
}
# Largest first: what `--shape auto` tries for full fine-tuning.
FULL_CANDIDATES = ("llama2-13b", "llama3-8b", "llama2-7b", "llama3.2-3b", "llama3.2-1b")

# Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets, by device-name fragment.
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("A6000", 154.8),
    ("L40S", 362.1),
    ("4090", 165.2),
    ("A10G", 70.0),
    ("L4", 121.0),
)


def peak_tflops(device_name: str) -> float | None:
    for fragment, value in PEAK_TFLOPS:
        if fragment in device_name:
            return value
    return None


def parameter_count(shape: Shape) -> tuple[int, int]:
    """(parameters outside the input embedding, all parameters) of an untied LLaMA."""
    d, f, layers, v = (
        shape.hidden_size,
        shape.intermediate_size,
        shape.num_hidden_layers,
        shape.vocab_size,
    )
    kv = d // shape.num_attention_heads * shape.num_key_value_heads
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * f + 2 * d
    body = layers * per_layer + d + v * d  # + final norm + output head
    return body, body + v * d


def flops_per_token(shape: Shape, seq_len: int, method: str) -> float:
    n, _ = parameter_count(shape)
    attention = shape.num_hidden_layers * shape.hidden_size * seq_len
    return 6 * n + 12 * attention if method == "full" else 4 * n + 8 * attention


def full_ft_bytes(shape: Shape) -> int:
    """Memory of fp32 weights, gradients and AdamW's two moments: 16 bytes a parameter."""
    return 16 * parameter_count(shape)[1]


@dataclass
class BenchResult:
    shape: str
    method: str
    device: str
    seq_len: int
    micro_batch_size: int
    steps: int
    tokens_per_s: float
    mfu: float | None
    peak_memory_gib: float | None
    params_b: float
    trainable_params_m: float
    precision: str
    gradient_checkpointing: bool
    attention: str

    def text(self) -> str:
        mfu = f"{self.mfu:.1%}" if self.mfu is not None else "n/a"
        memory = f"{self.peak_memory_gib:.1f} GiB" if self.peak_memory_gib is not None else "n/a"
        return (
            f"{self.method:4s} {self.shape:12s} seq {self.seq_len} x {self.micro_batch_size}: "
            f"{self.tokens_per_s:,.0f} tokens/s, MFU {mfu}, peak memory {memory} ({self.device})"
        )


def _build(
    shape: Shape,
    method: str,
    device: torch.device,
    precision: str,
    checkpointing: bool,
    attention: str,
):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=8192,
        rope_theta=shape.rope_theta,
        attn_implementation=attention,
    )
    half = torch.bfloat16 if precision == "bf16" else torch.float32
    weights_dtype = half if method == "lora" else torch.float32  # as train.modeling loads them
    with torch.device(device):
        model = LlamaForCausalLM(config).to(weights_dtype)
    if checkpointing:
        from .modeling import enable_checkpointing

        enable_checkpointing(model)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        from .config import LoraConfig as TrainLora

        defaults = TrainLora()
        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=defaults.r,
                lora_alpha=defaults.alpha,
                lora_dropout=defaults.dropout,
                target_modules=list(defaults.target_modules),
            ),
        )
    return model


def run_bench(
    shape_name: str,
    method: str,
    *,
    seq_len: int = 2048,
    micro_batch_size: int = 1,
    steps: int = 10,
    warmup: int = 3,
    device: str = "auto",
    checkpointing: bool = True,
    attention: str = "auto",
    peak: float | None = None,
) -> BenchResult:
    """Time ``steps`` optimizer steps after ``warmup`` untimed ones."""
    import importlib.util

    from .config import OptimConfig
    from .encoding import Row, collate
    from .sft import build_optimizer, loss_sum

    if shape_name not in SHAPES:
        raise UsageError(f"unknown shape {shape_name!r}; known: {', '.join(SHAPES)}")
    shape = SHAPES[shape_name]
    cuda = torch.cuda.is_available() and device != "cpu"
    if device == "cuda" and not cuda:
        raise UsageError("--device cuda: no CUDA GPU is available")
    dev = torch.device("cuda" if cuda else "cpu")
    precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if attention == "auto":
        attention = (
            "flash_attention_2" if cuda and importlib.util.find_spec("flash_attn") else "sdpa"
        )
    torch.manual_seed(0)
    model = _build(shape, method, dev, precision, checkpointing, attention)
    model.train()
    optimizer = build_optimizer(model, OptimConfig(lr=1e-5))
    generator = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(micro_batch_size):
        ids = torch.randint(3, shape.vocab_size, (seq_len,), generator=generator).tolist()
        rows.append(Row(input_ids=ids, labels=ids, position_ids=list(range(seq_len))))
    batch = {k: v.to(dev) for k, v in collate(rows, pad_id=0).items()}
    tokens = micro_batch_size * seq_len

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_sum(model, batch) / tokens
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    tokens_per_s = tokens * steps / elapsed
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    peak = peak if peak is not None else (peak_tflops(name) if cuda else None)
    mfu = tokens_per_s * flops_per_token(shape, seq_len, method) / (peak * 1e12) if peak else None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return BenchResult(
        shape=shape_name,
        method=method,
        device=name,
        seq_len=seq_len,
        micro_batch_size=micro_batch_size,
        steps=steps,
        tokens_per_s=tokens_per_s,
        mfu=mfu,
        peak_memory_gib=torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else None,
        params_b=parameter_count(shape)[1] / 1e9,
        trainable_params_m=trainable / 1e6,
        precision=precision,
        gradient_checkpointing=checkpointing,
        attention=attention,
    )


def largest_full_shape(memory_bytes: int) -> str:
    """The largest candidate whose weights, gradients and optimizer take at most 80% of memory."""
    for name in FULL_CANDIDATES:
        if full_ft_bytes(SHAPES[name]) <= 0.8 * memory_bytes:
            return name
    return "tiny"


def plan(shape: str, method: str, *, headline: bool) -> list[tuple[str, str]]:
    """What to measure: the two headline figures, or one (shape, method) with ``auto`` resolved."""
    cuda = torch.cuda.is_available()
    memory = torch.cuda.get_device_properties(0).total_memory if cuda else 0
    if headline:
        if not cuda:
            raise UsageError("--all measures the GPU figures and needs a CUDA GPU")
        return [("llama3-8b", "lora"), (largest_full_shape(memory), "full")]
    if shape == "auto":
        shape = largest_full_shape(memory) if method == "full" else "llama3-8b"
    return [(shape, method)]
