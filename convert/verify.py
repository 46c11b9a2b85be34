"""Proof that a GGUF is the model it came from: transformers and llama.cpp side by side.

The same token ids go through the Hugging Face model (transformers, float32) and through the
GGUF (llama.cpp), and the logits are compared position by position:

- unquantized GGUFs (F32/F16/BF16): max |delta logit| relative to the largest logit, and greedy
  continuations that must be identical token for token;
- quantized GGUFs: top-1 agreement and mean KL divergence of the next-token distributions.

Tokenization is checked separately: llama.cpp's ids for each test line must equal those of the
checkpoint's own tokenizer files (``tokenizer.model`` through sentencepiece, the tokenizer LLaMA
was trained with; ``tokenizer.json`` through ``tokenizers`` for Llama-3).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayling_local.errors import InputError, ModelError
from bayling_local.gguf_file import inspect_gguf

from .checkpoint import read_json

#: Default prompts: one per script the BayLing models translate between.
DEFAULT_PROMPTS: tuple[str, ...] = (
    "Provide the Chinese translation for this sentence: The weather is nice today.",
    "提供这句话的英文翻译：我们明天去北京。",
    "日本語の文章を英語に翻訳してください。",
    "Переведите на английский: погода сегодня хорошая.",
)

#: Multilingual lines for the tokenizer check (WMT22-like text, whitespace runs, emoji).
DEFAULT_LINES: tuple[str, ...] = DEFAULT_PROMPTS + (
    "Die Ware hat unter 20 Euro gekostet.",
    "Blíží se velký návrat českého smolaře.",
    "Добрий день, вибачте будь ласка.",
    "Oui bien sur",
    "NAS用PCの電源が入らなくなりました🎉🎉",
    "  two leading spaces, tabs\tand\n\nnewlines   ",
    "I'm sure they'll say we've done it 😊",
)


@dataclass(frozen=True)
class Bounds:
    """Pass/fail limits of a verification."""

    max_rel_logit_diff: float  # unquantized: max |delta| / max |logit|
    min_top1: float = 0.0  # quantized: share of positions with the same argmax
    max_mean_kl: float = float("inf")  # quantized: mean KL(hf || gguf) in nats


UNQUANTIZED_BOUNDS: dict[str, Bounds] = {
    "F32": Bounds(max_rel_logit_diff=1e-3),
    "F16": Bounds(max_rel_logit_diff=1e-2),
    "BF16": Bounds(max_rel_logit_diff=5e-2),
}

#: Quantized bounds by bits per weight: (min bits, min top-1 agreement, max mean KL in nats).
#: They are meant to catch a broken conversion (mis-ordered or mis-scaled tensors give KL of
#: several nats and chance-level agreement), not to grade quantizers: on trained models
#: llama.cpp's types stay far inside them (Q4_K_M is around 0.03 nats).
QUANTIZED_BOUNDS: tuple[tuple[float, float, float], ...] = (
    (8.0, 0.90, 0.05),
    (5.0, 0.70, 0.25),
    (4.0, 0.60, 0.50),
    (3.0, 0.45, 1.00),
    (0.0, 0.30, 2.00),
)


def bounds_for(type_name: str, bits: float | None) -> Bounds:
    """The pass/fail limits for a GGUF of this type (``bits``: its bits per weight)."""
    if type_name in UNQUANTIZED_BOUNDS:
        return UNQUANTIZED_BOUNDS[type_name]
    for min_bits, top1, kl in QUANTIZED_BOUNDS:
        if (bits or 0.0) >= min_bits:
            return Bounds(max_rel_logit_diff=float("inf"), min_top1=top1, max_mean_kl=kl)
    raise AssertionError("unreachable: the last row accepts any bits")


@dataclass
class VerifyReport:
    """What a verification measured, and whether every bound held."""

    gguf_type: str
    quantized: bool
    bounds: Bounds
    max_abs_logit_diff: float = 0.0
    max_abs_logit: float = 0.0
    greedy_hf: list[list[int]] = field(default_factory=list)
    greedy_gguf: list[list[int]] = field(default_factory=list)
    greedy_ties: int = 0  # continuations that part at a near-tie of the reference's logits
    top1_agreement: float = 1.0
    mean_kl: float = 0.0
    tokenizer_mismatches: list[str] = field(default_factory=list)
    lines_checked: int = 0

    @property
    def rel_logit_diff(self) -> float:
        return self.max_abs_logit_diff / self.max_abs_logit if self.max_abs_logit else 0.0

    @property
    def greedy_identical(self) -> int:
        return sum(a == b for a, b in zip(self.greedy_hf, self.greedy_gguf, strict=True))

    @property
    def greedy_agrees(self) -> bool:
        """Every continuation is identical, or parts only where the reference itself was
        undecided (its top two logits closer than the logit tolerance)."""
        return self.greedy_identical + self.greedy_ties == len(self.greedy_hf)

    @property
    def failures(self) -> list[str]:
        found: list[str] = []
        if self.tokenizer_mismatches:
            found.append(
                f"tokenizer ids differ on {len(self.tokenizer_mismatches)} of "
                f"{self.lines_checked} lines (first: {self.tokenizer_mismatches[0]!r})"
            )
        if not self.quantized:
            if self.rel_logit_diff > self.bounds.max_rel_logit_diff:
                found.append(
                    f"max |delta logit| is {self.rel_logit_diff:.2e} of the largest logit "
                    f"(bound {self.bounds.max_rel_logit_diff:.0e})"
                )
            if not self.greedy_agrees:
                found.append("greedy continuations differ")
        else:
            if self.top1_agreement < self.bounds.min_top1:
                found.append(
                    f"top-1 agreement {self.top1_agreement:.1%} < {self.bounds.min_top1:.0%}"
                )
            if self.mean_kl > self.bounds.max_mean_kl:
                found.append(f"mean KL {self.mean_kl:.4f} > {self.bounds.max_mean_kl}")
        return found

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        """A human summary, one fact a line."""
        out = [f"GGUF type: {self.gguf_type}"]
        out.append(
            f"tokenizer: {self.lines_checked - len(self.tokenizer_mismatches)}/{self.lines_checked} "
            "lines give identical ids"
        )
        out.append(
            f"max |delta logit|: {self.max_abs_logit_diff:.3e} "
            f"({self.rel_logit_diff:.2e} of max |logit| {self.max_abs_logit:.3f})"
        )
        if self.quantized:
            out.append(f"top-1 agreement: {self.top1_agreement:.1%}")
            out.append(f"mean KL divergence: {self.mean_kl:.5f} nats")
        else:
            ties = f" ({self.greedy_ties} more part at a near-tie)" if self.greedy_ties else ""
            out.append(
                f"greedy continuations identical: {self.greedy_identical}/{len(self.greedy_hf)}{ties}"
            )
        out.append(
            "verification passed" if self.ok else "verification FAILED: " + "; ".join(self.failures)
        )
        return out


def reference_tokenizer(hf_dir: Path | str) -> Callable[[str], list[int]]:
    """Encode text (with BOS where the tokenizer adds one) as the checkpoint's tokenizer does."""
    hf_dir = Path(hf_dir)
    config_path = hf_dir / "tokenizer_config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    if (hf_dir / "tokenizer.model").is_file():
        import sentencepiece as spm

        processor = spm.SentencePieceProcessor(model_file=str(hf_dir / "tokenizer.model"))
        prefix = [processor.bos_id()] if config.get("add_bos_token", True) else []
        return lambda text: prefix + processor.encode(text)
    if (hf_dir / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
        return lambda text: tokenizer.encode(text, add_special_tokens=True).ids
    raise InputError(f"{hf_dir} has no tokenizer (tokenizer.model or tokenizer.json)")


def _load_hf_model(hf_dir: Path, base_dir: Path | None):
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        raise InputError(
            "verification needs torch and transformers (pip install 'bayling-local[train]')"
        ) from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr is for our own notices
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_pretrained(base_dir or hf_dir, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise InputError(f"transformers cannot load {base_dir or hf_dir}: {exc}") from None
    if base_dir is not None:
        from .checkpoint import open_checkpoint

        delta = open_checkpoint(hf_dir)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, ref in delta.tensors.items():
                if name in params:
                    params[name].add_(torch.from_numpy(ref.load().astype(np.float32)))
    model.eval()
    return model


def _hf_logits(model, ids: Sequence[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.tensor([list(ids)]))
    return out.logits[0].float().numpy()


def _hf_greedy(model, ids: Sequence[int], steps: int) -> tuple[list[int], list[np.ndarray]]:
    """Greedy tokens and the logits each was chosen from (to judge near-ties later)."""
    import torch

    generated: list[int] = []
    step_logits: list[np.ndarray] = []
    with torch.no_grad():
        out = model(input_ids=torch.tensor([list(ids)]), use_cache=True)
        for _ in range(steps):
            logits = out.logits[0, -1].float().numpy()
            token = int(logits.argmax())
            generated.append(token)
            step_logits.append(logits)
            out = model(
                input_ids=torch.tensor([[token]]),
                past_key_values=out.past_key_values,
                use_cache=True,
            )
    return generated, step_logits


def _open_llama(gguf_path: Path, n_ctx: int, threads: int | None):
    try:
        from llama_cpp import Llama
    except ImportError:
        raise InputError("verification needs llama-cpp-python") from None
    try:
        return Llama(
            model_path=str(gguf_path),
            n_ctx=n_ctx,
            n_batch=n_ctx,
            logits_all=True,
            verbose=False,
            n_threads=threads or max(1, min(4, os.cpu_count() or 1)),
            n_gpu_layers=0,
            # An F16 key/value cache alone moves logits by ~1e-3; compare like with like.
            type_k=0,  # GGML_TYPE_F32
            type_v=0,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"llama.cpp cannot load {gguf_path}: {exc}") from None


def _gguf_logits(llm, ids: Sequence[int]) -> np.ndarray:
    llm.reset()
    llm.eval(list(ids))
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def _gguf_greedy(llm, ids: Sequence[int], steps: int) -> list[int]:
    llm.reset()
    llm.eval(list(ids))
    generated: list[int] = []
    for _ in range(steps):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        generated.append(token)
        llm.eval([token])
    return generated


def _parts_at_tie(
    hf_tokens: list[int], gguf_tokens: list[int], step_logits: list[np.ndarray], tolerance: float
) -> bool:
    """Whether two different continuations first part where the reference's logits for the
    two choices are within ``tolerance`` (a rounding-level near-tie, not a conversion error)."""
    for step, (mine, theirs) in enumerate(zip(hf_tokens, gguf_tokens, strict=True)):
        if mine != theirs:
            logits = step_logits[step]
            return bool(logits[mine] - logits[theirs] <= tolerance)
    return False


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def verify_gguf(
    gguf_path: Path | str,
    hf_dir: Path | str,
    *,
    base_dir: Path | str | None = None,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    lines: Sequence[str] = DEFAULT_LINES,
    greedy_tokens: int = 32,
    threads: int | None = None,
) -> VerifyReport:
    """Run the checkpoint and the GGUF on the same input and compare them."""
    gguf_path, hf_dir = Path(gguf_path), Path(hf_dir)
    file_type = int(inspect_gguf(gguf_path).metadata.get("general.file_type", 1))
    from .quantize import QUANT_TYPES

    qtype = next((t for t in QUANT_TYPES.values() if t.ftype == file_type), None)
    type_name = qtype.name if qtype is not None else f"ftype {file_type}"
    quantized = type_name not in UNQUANTIZED_BOUNDS
    report = VerifyReport(
        type_name, quantized, bounds_for(type_name, qtype.bits if qtype else None)
    )

    has_tokenizer = any((hf_dir / f).is_file() for f in ("tokenizer.model", "tokenizer.json"))
    encode = reference_tokenizer(hf_dir if has_tokenizer or base_dir is None else base_dir)
    encoded = [encode(p) for p in prompts]
    n_ctx = max(64, max(len(ids) for ids in encoded) + greedy_tokens + 8)
    llm = _open_llama(gguf_path, n_ctx, threads)
    try:
        for line in lines:
            theirs = llm.tokenize(line.encode("utf-8"), add_bos=True, special=False)
            report.lines_checked += 1
            if list(theirs) != encode(line):
                report.tokenizer_mismatches.append(line)
        model = _load_hf_model(hf_dir, Path(base_dir) if base_dir else None)
        kls: list[float] = []
        agree = total = 0
        parted: list[tuple[list[int], list[int], list[np.ndarray]]] = []
        for ids in encoded:
            ref = _hf_logits(model, ids)
            got = _gguf_logits(llm, ids)
            if ref.shape != got.shape:
                raise ModelError(
                    f"the GGUF's vocabulary ({got.shape[-1]}) differs from the model's ({ref.shape[-1]})"
                )
            report.max_abs_logit_diff = max(
                report.max_abs_logit_diff, float(np.abs(ref - got).max())
            )
            report.max_abs_logit = max(report.max_abs_logit, float(np.abs(ref).max()))
            log_p, log_q = (
                _log_softmax(ref.astype(np.float64)),
                _log_softmax(got.astype(np.float64)),
            )
            kls += list((np.exp(log_p) * (log_p - log_q)).sum(axis=-1))
            agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
            total += len(ids)
            if greedy_tokens:
                hf_tokens, step_logits = _hf_greedy(model, ids, greedy_tokens)
                gguf_tokens = _gguf_greedy(llm, ids, greedy_tokens)
                report.greedy_hf.append(hf_tokens)
                report.greedy_gguf.append(gguf_tokens)
                parted.append((hf_tokens, gguf_tokens, step_logits))
        tolerance = report.bounds.max_rel_logit_diff * report.max_abs_logit
        report.greedy_ties = sum(_parts_at_tie(*p, tolerance) for p in parted)
        report.top1_agreement = agree / total if total else 1.0
        report.mean_kl = float(np.mean(kls)) if kls else 0.0
    finally:
        llm.close()
    return report
