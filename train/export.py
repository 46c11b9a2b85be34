"""From a finished run, or any of its sharded checkpoints, to a GGUF the app loads, in one step.

The source is a run directory (its ``final/`` model) or a checkpoint directory
(``RUN_DIR/checkpoints/step-N``, sharded by however many processes saved it: one process reads
it whole with ``torch.distributed.checkpoint``, no launcher needed). LoRA adapters are merged
into the base, the model is saved as a Hugging Face checkpoint
(safetensors, tokenizer, generation config) and handed to :func:`bayling_convert.convert_checkpoint`,
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
        from .checkpoint import latest

        saved = latest(run_dir)
        hint = f", or export a checkpoint: {saved}" if saved is not None else ""
        raise UsageError(
            f"{run_dir} has no finished training ({FINAL}/{RUN_INFO} is missing): "
            f"finish or resume the run first{hint}"
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


def merge_checkpoint(checkpoint: Path, hf_dir: Path, *, dtype: str = "auto") -> Path:
    """Save a sharded checkpoint's model (LoRA merged into its base) as a Hugging Face checkpoint."""
    import torch
    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from . import checkpoint as ckpt
    from .config import parse_config
    from .modeling import base_source, lora_config

    hf_logging.disable_progress_bar()
    ckpt.read_state(checkpoint)
    run_dir = checkpoint.parent.parent
    recipe = run_dir / "config.yaml"
    try:
        config = parse_config(
            yaml.safe_load(recipe.read_text(encoding="utf-8")), source=str(recipe)
        )
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{recipe}: cannot read the run's recipe ({exc})") from None
    base = base_source(config, run_dir)
    if dtype != "auto":
        torch_dtype = getattr(torch, dtype)
    else:  # as the final model would be: fp32 master weights, or the base's own dtype
        torch_dtype = torch.float32 if config.method == "full" else "auto"
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        if config.method != "full":
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(config))
        ckpt.load_weights(model, checkpoint, config)
        if config.method != "full":
            model = model.merge_and_unload()  # type: ignore[operator]
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load the model of {checkpoint}: {str(exc).splitlines()[0]}"
        ) from None
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    source = config.model.tokenizer or base
    save_tokenizer(AutoTokenizer.from_pretrained(source), hf_dir, source)
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
    """Merge, save and convert the run (or checkpoint) ``run_dir`` to the GGUF ``out``."""
    from bayling_convert import convert_checkpoint

    run_dir, out = Path(run_dir), Path(out)
    if out.exists() and not force:
        raise UsageError(f"{out} already exists (use --force to overwrite it)")
    from . import checkpoint as ckpt

    if (run_dir / ckpt.STATE).exists() or (run_dir / ckpt.METADATA).exists():
        default = run_dir.parent.parent / "export" / run_dir.name
        target = Path(hf_dir) if hf_dir is not None else default
        merge_checkpoint(run_dir, target, dtype=dtype)
        run_name = run_dir.parent.parent.resolve().name
    else:
        target = Path(hf_dir) if hf_dir is not None else run_dir / "export" / "hf"
        merge_run(run_dir, target, dtype=dtype)
        run_name = run_dir.resolve().name
    # general.name: the run's name, whichever of its states is exported.
    name = name or run_name
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
