"""From a finished run to a GGUF the app loads, in one step.

LoRA adapters are merged into the base, the model is saved as a Hugging Face checkpoint
(safetensors, tokenizer, generation config) and handed to :func:`convert.convert_checkpoint`,
which writes the GGUF with BayLing's chat template and quantizes it when asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bayling_local.errors import ModelError, UsageError

from .sft import FINAL, RUN_INFO
from .spm import TOKENIZER_MODEL, save_tokenizer


@dataclass(frozen=True)
class ExportResult:
    hf_dir: Path
    gguf: Path


def read_run_info(run_dir: Path) -> dict[str, object]:
    path = run_dir / FINAL / RUN_INFO
    if not path.exists():
        raise UsageError(
            f"{run_dir} has no finished training ({FINAL}/{RUN_INFO} is missing): finish or resume the run first"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def merge_run(run_dir: Path, hf_dir: Path, *, dtype: str = "auto") -> Path:
    """Save the run's final model (LoRA merged into its base) as a Hugging Face checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    info = read_run_info(run_dir)
    final = run_dir / FINAL
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        if info["method"] == "full":
            model = AutoModelForCausalLM.from_pretrained(str(final), dtype=torch_dtype)
        else:
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(str(info["base"]), dtype=torch_dtype)
            model = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load the trained model of {run_dir}: {str(exc).splitlines()[0]}"
        ) from None
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(str(final))
    save_tokenizer(
        tokenizer, hf_dir, str(final) if (final / TOKENIZER_MODEL).exists() else str(info["base"])
    )
    return hf_dir


def export_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    quant: str | None = None,
    outtype: str = "f16",
    hf_dir: Path | str | None = None,
    name: str | None = None,
    force: bool = False,
    dtype: str = "auto",
    show_progress: bool = True,
) -> ExportResult:
    """Merge, save and convert the run in ``run_dir`` to the GGUF ``out``."""
    from convert import convert_checkpoint

    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and not force:
        raise UsageError(f"{out} already exists (use --force to overwrite it)")
    target = Path(hf_dir) if hf_dir is not None else run_dir / "export" / "hf"
    merge_run(run_dir, target, dtype=dtype)
    gguf = convert_checkpoint(
        target,
        out,
        outtype=outtype,
        quant=quant,
        force=force,
        name=name,
        show_progress=show_progress,
    )
    return ExportResult(hf_dir=target, gguf=gguf)
