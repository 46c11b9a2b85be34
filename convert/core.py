"""Hugging Face checkpoint -> GGUF, streamed one tensor at a time.

The order of work is what makes a conversion safe: every check on the inputs (config,
tokenizer, tensor names and shapes, delta against base, the output path) runs before the
output is opened; the GGUF header and tensor directory are written from tensor headers alone;
then each tensor is loaded, converted and written in turn, so memory holds one tensor. The
output is a temporary file renamed into place only when complete
(:func:`bayling_local.atomic.atomic_path`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from gguf import GGML_QUANT_VERSION, GGMLQuantizationType, GGUFWriter, RopeScalingType

from bayling_local.atomic import atomic_path, describe_os_error
from bayling_local.errors import OutputError, UsageError
from bayling_local.progress import progress

from .checkpoint import Checkpoint, LlamaSpec, RopeScaling, array_ref, open_checkpoint
from .identity import Identity, resolve_identity
from .tensors import OutType, TensorPlan, plan_tensors
from .vocab import Vocab, read_vocab

ALIGNMENT = 32
SOURCE_REPO_KEY = "general.source.huggingface.repository"


@dataclass(frozen=True)
class ConversionPlan:
    """Everything needed to write the GGUF, checked and ready."""

    spec: LlamaSpec
    vocab: Vocab
    identity: Identity
    tensors: list[TensorPlan]
    outtype: OutType

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def check_output(out_path: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``) or cannot be created."""
    if out_path.is_dir():
        raise OutputError(f"{out_path} is a directory")
    if out_path.exists() and not force:
        raise OutputError(f"{out_path} already exists (use --force to overwrite it)")
    parent = out_path.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {out_path}: its directory does not exist")


def plan_conversion(
    hf_dir: Path | str,
    *,
    outtype: str | OutType = OutType.F16,
    base_dir: Path | str | None = None,
    name: str | None = None,
    repo: str | None = None,
) -> ConversionPlan:
    """Open and check a checkpoint (and its delta base) without writing anything."""
    checkpoint = open_checkpoint(hf_dir)
    base: Checkpoint | None = open_checkpoint(base_dir) if base_dir is not None else None
    tokenizer_dir = checkpoint.directory
    has_tokenizer = any(
        (tokenizer_dir / f).is_file() for f in ("tokenizer.model", "tokenizer.json")
    )
    if base is not None and not has_tokenizer:
        tokenizer_dir = base.directory  # a delta without tokenizer files uses its base's
    spec = checkpoint.spec
    vocab = read_vocab(tokenizer_dir, spec)
    kind = OutType.parse(outtype)
    tensors = plan_tensors(checkpoint.tensors, spec, kind, base=base.tensors if base else None)
    tensors += _rope_freqs(spec)
    identity = resolve_identity(
        checkpoint.directory, spec, vocab, name=name, repo=repo, has_base=base is not None
    )
    return ConversionPlan(spec, vocab, identity, tensors, kind)


def _rope_freqs(spec: LlamaSpec) -> list[TensorPlan]:
    """Llama-3.1-style rope scaling is a per-frequency factor tensor in llama.cpp."""
    scaling = spec.rope_scaling
    if scaling is None or scaling.kind != "llama3":
        return []
    factors = llama3_rope_factors(spec, scaling)
    ref = array_ref("rope_freqs", factors)
    return [TensorPlan("rope_freqs.weight", factors.shape, GGMLQuantizationType.F32, ref)]


def llama3_rope_factors(spec: LlamaSpec, scaling: RopeScaling) -> np.ndarray:
    dims = np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim
    wavelengths = 2 * np.pi * spec.rope_theta**dims
    low = scaling.original_context / scaling.low_freq_factor
    high = scaling.original_context / scaling.high_freq_factor
    smooth = (scaling.original_context / wavelengths - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    factors = np.where(
        wavelengths < high,
        1.0,
        np.where(wavelengths > low, scaling.factor, 1.0 / ((1 - smooth) / scaling.factor + smooth)),
    )
    return factors.astype(np.float32)


def _add_metadata(writer: GGUFWriter, plan: ConversionPlan) -> None:
    spec, vocab, identity = plan.spec, plan.vocab, plan.identity
    writer.add_type("model")
    writer.add_name(identity.name)
    if identity.repository:
        writer.add_string(SOURCE_REPO_KEY, identity.repository)
        writer.add_source_url(f"https://huggingface.co/{identity.repository}")
    if identity.licence:
        writer.add_license(identity.licence)
    writer.add_vocab_size(spec.vocab_size)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.hidden_size)
    writer.add_block_count(spec.num_layers)
    writer.add_feed_forward_length(spec.intermediate_size)
    writer.add_head_count(spec.num_heads)
    writer.add_head_count_kv(spec.num_kv_heads)
    writer.add_rope_dimension_count(spec.head_dim)
    if spec.head_dim * spec.num_heads != spec.hidden_size:
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
    writer.add_rope_freq_base(spec.rope_theta)
    if spec.rope_scaling is not None and spec.rope_scaling.kind == "linear":
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(spec.rope_scaling.factor)
    writer.add_layer_norm_rms_eps(spec.rms_norm_eps)
    writer.add_file_type(plan.outtype.file_type)
    writer.add_quantization_version(GGML_QUANT_VERSION)

    writer.add_tokenizer_model(vocab.ggml_model)
    if vocab.pre:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    for value, add in (
        (vocab.bos_id, writer.add_bos_token_id),
        (vocab.eos_id, writer.add_eos_token_id),
        (vocab.unk_id, writer.add_unk_token_id),
        (vocab.pad_id, writer.add_pad_token_id),
        (vocab.eot_id, writer.add_eot_token_id),
    ):
        if value is not None:
            add(value)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.remove_extra_whitespaces is not None:
        writer.add_remove_extra_whitespaces(vocab.remove_extra_whitespaces)
    writer.add_chat_template(identity.prompt_format.jinja_template)


def _write_bytes(handle: BinaryIO, data: memoryview | bytes) -> None:
    """The one place tensor data reaches the file (tests simulate a full disk here)."""
    handle.write(data)


def write_gguf(path: Path, plan: ConversionPlan, *, show_progress: bool = True) -> None:
    """Write the planned GGUF to ``path`` (the caller makes it atomic)."""
    writer = GGUFWriter(path, "llama")
    try:
        _add_metadata(writer, plan)
        for tensor in plan.tensors:
            writer.add_tensor_info(
                tensor.gguf_name,
                tensor.byte_shape,
                np.dtype(np.uint8),
                tensor.nbytes,
                tensor.ggml_type,
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        handle = writer.fout[0]
        with progress("Converting", plan.nbytes, unit="bytes", quiet=not show_progress) as bar:
            for tensor in plan.tensors:
                _pad(handle)
                for chunk in tensor.chunks():
                    _write_bytes(handle, chunk.data.cast("B"))
                    bar.advance(chunk.nbytes)
                    del chunk
            _pad(handle)
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        writer.close()


def _pad(handle: BinaryIO) -> None:
    offset = handle.tell()
    remainder = offset % ALIGNMENT
    if remainder:
        _write_bytes(handle, bytes(ALIGNMENT - remainder))


def convert_checkpoint(
    hf_dir: Path | str,
    out_path: Path | str,
    *,
    outtype: str | OutType = "f16",
    quant: str | None = None,
    base_dir: Path | str | None = None,
    force: bool = False,
    name: str | None = None,
    repo: str | None = None,
    threads: int = 0,
    show_progress: bool = True,
) -> Path:
    """Convert a LLaMA-family Hugging Face checkpoint to a GGUF at ``out_path``.

    ``outtype`` is the type convert writes itself (f32, f16, bf16, q8_0); ``quant`` then
    quantizes with llama.cpp to any type of :data:`bayling_convert.quantize.QUANT_TYPES` (the
    intermediate file is removed). ``base_dir`` applies a v1.0 weight delta. Raises
    :class:`~bayling_local.errors.BaylingError` subclasses with one-line messages.
    """
    from .quantize import quantize_gguf, resolve_quant_type

    out_path = Path(out_path)
    kind = OutType.parse(outtype)
    quant_type = resolve_quant_type(quant) if quant else None
    if quant_type is not None and kind is OutType.Q8_0:
        raise UsageError("--quant needs an unquantized --outtype (f32, f16 or bf16) to start from")
    check_output(out_path, force)
    plan = plan_conversion(hf_dir, outtype=kind, base_dir=base_dir, name=name, repo=repo)
    if quant_type is None:
        with atomic_path(out_path) as tmp:
            _write_reporting_errors(tmp, out_path, plan, show_progress)
        return out_path
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{out_path.name}.", suffix=".unquantized", dir=out_path.parent
        )
    except OSError as exc:
        raise OutputError(describe_os_error(exc, out_path)) from None
    os.close(fd)
    intermediate = Path(tmp_name)
    try:
        _write_reporting_errors(intermediate, out_path, plan, show_progress)
        quantize_gguf(
            intermediate,
            out_path,
            quant_type.name,
            force=True,
            threads=threads,
            show_progress=show_progress,
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            intermediate.unlink()
    return out_path


def _write_reporting_errors(
    path: Path, target: Path, plan: ConversionPlan, show_progress: bool
) -> None:
    try:
        write_gguf(path, plan, show_progress=show_progress)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
