"""GGUF -> quantized GGUF through llama.cpp's own quantizer (``llama_model_quantize``).

Every llama.cpp type that works without an importance matrix is offered; the low-bit types
that need one (llama.cpp refuses them without) are named and refused with a clear message.
Types meant for other model kinds (ternary TQ1_0/TQ2_0, MXFP4 for mixtures of experts) are not
offered. llama.cpp reports each tensor
it quantizes through its log callback, which drives the progress bar and supplies the reason
when it fails.
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from bayling_local.errors import Cancelled, ModelError, OutputError, UsageError
from bayling_local.gguf_file import inspect_gguf
from bayling_local.output import atomic_path, check_output
from bayling_local.progress import progress

_LOW_SPACE = 64 << 20  # bytes; less than this left after a failed write means the disk filled


@dataclass(frozen=True)
class QuantType:
    """One llama.cpp output type (``llama_ftype``) and what it trades."""

    name: str
    ftype: int
    bits: float  # approximate bits per weight of the whole model
    note: str
    needs_imatrix: bool = False


# llama_ftype values from llama.h; test_quantize checks them against llama_cpp's constants.
QUANT_TYPES: dict[str, QuantType] = {
    t.name: t
    for t in (
        QuantType("F32", 0, 32.0, "full precision, no loss; twice the size of F16"),
        QuantType("F16", 1, 16.0, "half precision: the published weights, no measurable loss"),
        QuantType("BF16", 32, 16.0, "bfloat16: no measurable loss; fast where the CPU supports it"),
        QuantType("Q8_0", 7, 8.5, "8-bit: practically lossless (+0.003 ppl on Llama-3-8B)"),
        QuantType("Q6_K", 18, 6.56, "6-bit K-quant: near-lossless"),
        QuantType(
            "Q5_K_M", 17, 5.7, "5-bit K-quant, medium: very low loss (+0.057 ppl, Llama-3-8B)"
        ),
        QuantType("Q5_K_S", 16, 5.5, "5-bit K-quant, small: low loss"),
        QuantType("Q5_1", 9, 6.0, "legacy 5-bit with offset"),
        QuantType("Q5_0", 8, 5.5, "legacy 5-bit"),
        QuantType("Q4_K_M", 15, 4.9, "4-bit K-quant, medium: the recommended balance (+0.175 ppl)"),
        QuantType("Q4_K_S", 14, 4.6, "4-bit K-quant, small: a little more loss than Q4_K_M"),
        QuantType("Q4_1", 3, 5.0, "legacy 4-bit with offset"),
        QuantType("Q4_0", 2, 4.5, "legacy 4-bit: fast on every backend, more loss"),
        QuantType("IQ4_NL", 25, 4.5, "4-bit non-linear: Q4_0's size with less loss"),
        QuantType("IQ4_XS", 30, 4.25, "4.25-bit non-linear: smallest 4-bit"),
        QuantType("Q3_K_L", 13, 4.3, "3-bit K-quant, large: noticeable loss"),
        QuantType("Q3_K_M", 12, 3.9, "3-bit K-quant, medium: noticeable loss"),
        QuantType("Q3_K_S", 11, 3.5, "3-bit K-quant, small: high loss"),
        QuantType("IQ3_M", 27, 3.7, "3.7-bit i-quant (better with an importance matrix)"),
        QuantType("IQ3_S", 26, 3.44, "3.4-bit i-quant (better with an importance matrix)"),
        QuantType("IQ3_XS", 22, 3.3, "3.3-bit i-quant", needs_imatrix=True),
        QuantType("IQ3_XXS", 23, 3.06, "3.1-bit i-quant", needs_imatrix=True),
        QuantType("Q2_K", 10, 3.0, "2-bit K-quant: very high loss, for tight memory only"),
        QuantType("Q2_K_S", 21, 2.9, "2-bit K-quant, small", needs_imatrix=True),
        QuantType("IQ2_M", 29, 2.7, "2.7-bit i-quant", needs_imatrix=True),
        QuantType("IQ2_S", 28, 2.5, "2.5-bit i-quant", needs_imatrix=True),
        QuantType("IQ2_XS", 20, 2.31, "2.3-bit i-quant", needs_imatrix=True),
        QuantType("IQ2_XXS", 19, 2.06, "2.1-bit i-quant", needs_imatrix=True),
        QuantType("IQ1_M", 31, 1.75, "1.75-bit i-quant", needs_imatrix=True),
        QuantType("IQ1_S", 24, 1.56, "1.56-bit i-quant", needs_imatrix=True),
    )
}


def usable_types() -> list[str]:
    return [name for name, t in QUANT_TYPES.items() if not t.needs_imatrix]


def resolve_quant_type(name: str) -> QuantType:
    """The quant type called ``name`` (case-insensitive); unknown or imatrix-only is an error."""
    qtype = QUANT_TYPES.get(name.strip().upper())
    if qtype is None:
        raise UsageError(f"unknown quant type {name!r}; valid types: {', '.join(usable_types())}")
    if qtype.needs_imatrix:
        raise UsageError(
            f"{qtype.name} needs an importance matrix, which bayling-local does not compute; "
            f"use one of {', '.join(usable_types())}"
        )
    return qtype


_TENSOR_LINE = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")


class _QuantLog:
    """Collects llama.cpp's quantizer log: tensor counts for progress, errors for messages."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.errors: list[str] = []

    def feed(self, level: int, text: str) -> None:
        match = _TENSOR_LINE.search(text)
        if match:
            self.done, self.total = int(match[1]), int(match[2])
        if level == 3 or "failed to quantize" in text:
            self.errors.append(" ".join(text.split()))


def _run_quantize(src: Path, dst: Path, qtype: QuantType, threads: int, log: _QuantLog) -> int:
    import llama_cpp
    from llama_cpp import _logger

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        log.feed(level, text.decode("utf-8", errors="replace"))

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = qtype.ftype
    params.nthread = threads
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    try:
        return llama_cpp.llama_model_quantize(
            str(src).encode(), str(dst).encode(), ctypes.byref(params)
        )
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def quantize_gguf(
    src: Path | str,
    dst: Path | str,
    qtype: str,
    *,
    force: bool = False,
    threads: int = 0,
    show_progress: bool = True,
) -> Path:
    """Quantize the GGUF ``src`` to ``dst`` as ``qtype`` (e.g. ``Q4_K_M``).

    The output is written to a temporary file and renamed when llama.cpp has finished.
    """
    src, dst = Path(src), Path(dst)
    quant = resolve_quant_type(qtype)
    inspect_gguf(src)  # a missing, truncated or non-GGUF input fails here with one line
    if dst.exists() and not force:
        raise OutputError(f"{dst} already exists (use --force to overwrite it)")
    if dst.is_dir():
        raise OutputError(f"{dst} is a directory")
    if not dst.parent.is_dir():
        raise OutputError(f"cannot write {dst}: its directory does not exist")
    check_output(dst, inputs=(src,))  # same file by inode (a link, ./x): exit 4, nothing run
    log = _QuantLog()
    result: list[int | BaseException] = []

    def work() -> None:
        try:
            result.append(_run_quantize(src, tmp, quant, threads, log))
        except BaseException as exc:  # surfaced in the calling thread
            result.append(exc)

    with (
        atomic_path(dst, inputs=(src,)) as tmp,
        progress(f"Quantizing to {quant.name}", None, quiet=not show_progress) as bar,
    ):
        # A worker thread keeps the main thread free to take Ctrl-C while llama.cpp works.
        worker = threading.Thread(target=work, name="llama-quantize", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
                if log.total:
                    bar.update(total=log.total)
                    bar.advance(log.done - bar.completed)
        except KeyboardInterrupt:
            raise Cancelled("quantization interrupted") from None
        outcome = result[0] if result else RuntimeError("the quantizer stopped unexpectedly")
        if isinstance(outcome, BaseException):
            raise ModelError(f"llama.cpp could not quantize {src}: {outcome}")
        if outcome != 0:
            if _disk_full(tmp, log):
                raise OutputError(f"no space left on the device to write {dst}")
            reason = log.errors[-1] if log.errors else f"error code {outcome}"
            raise ModelError(f"llama.cpp could not quantize {src} to {quant.name}: {reason}")
    return dst


def _disk_full(tmp: Path, log: _QuantLog) -> bool:
    """Whether a failed quantization ran out of disk (llama.cpp only says "iostream error")."""
    import shutil

    text = " ".join(log.errors).lower()
    if "no space" in text or "enospc" in text:
        return True
    try:
        free = shutil.disk_usage(tmp.parent).free
    except OSError:
        return False
    return free < _LOW_SPACE and ("iostream" in text or "write" in text or not text)
