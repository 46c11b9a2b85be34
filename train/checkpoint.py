"""Sharded checkpoints with ``torch.distributed.checkpoint`` (DCP).

``RUN_DIR/checkpoints/step-N`` holds one ``__R_0.distcp`` file per process that saved it (its
shards of the trainable weights and of the optimizer state), DCP's ``.metadata`` and
``trainer_state.json`` (step, tokens, process count and what the recipe trains). LoRA
checkpoints hold only the adapters. A checkpoint is written under a hidden name and renamed
when every process has finished, so a run killed while saving keeps its previous one.

DCP reshards on load: a checkpoint saved by N processes resumes on M (or is read by one process
for export). What the data order and the random numbers depend on -- the global batch and the
step -- does not change with the process count, so the resumed losses do not either.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any, cast

import torch

from bayling_local.errors import UsageError

from .config import RunConfig

CHECKPOINTS = "checkpoints"
STATE = "trainer_state.json"
METADATA = ".metadata"


def recipe_identity(config: RunConfig) -> dict[str, object]:
    """What a checkpoint can only be resumed with: the same model, method and batch."""
    model = config.model
    identity: dict[str, object] = {
        "method": config.method,
        "model": model.base if model.base is not None else model.scratch.model_dump(mode="json"),  # type: ignore[union-attr]
        "seq_len": config.data.seq_len,
        "batch_size": config.train.global_batch,
        "seed": config.train.seed,
    }
    if config.method != "full":
        lora = config.lora.model_dump(mode="json")
        lora.pop("dropout")
        identity["lora"] = lora
    return identity


def state_options(config: RunConfig):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # LoRA: the frozen base is not saved (it is the base checkpoint). Not strict, so that
    # loading the adapters alone leaves the base as it is; DCP itself fails on any adapter or
    # optimizer entry the checkpoint lacks.
    lora = config.method != "full"
    return StateDictOptions(ignore_frozen_params=lora, strict=not lora)


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"step-{step:07d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    found = [
        p
        for p in (run_dir / CHECKPOINTS).glob("step-*")
        if p.name.split("-")[1].isdigit() and (p / STATE).exists()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def is_checkpoint(path: Path) -> bool:
    return (path / STATE).is_file() and (path / METADATA).is_file()


def read_state(path: Path) -> dict[str, object]:
    if not is_checkpoint(path):
        raise UsageError(f"{path} is not a checkpoint of bayling-train (no {STATE} and {METADATA})")
    try:
        return json.loads((path / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path / STATE}: unreadable ({exc})") from None


def check_identity(path: Path, state: dict[str, object], config: RunConfig) -> None:
    """Refuse a checkpoint written by another recipe, naming the first difference."""
    saved = cast(dict[str, object], state.get("recipe") or {})
    wanted = recipe_identity(config)
    for key, value in wanted.items():
        if saved.get(key) != value:
            raise UsageError(
                f"{path} was saved by another recipe ({key}: {_short(saved.get(key))} there, "
                f"{_short(value)} here): resume it with its own recipe, or start again with "
                "--overwrite"
            )


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def save(
    model,
    optimizer,
    run_dir: Path,
    *,
    step: int,
    tokens: int,
    config: RunConfig,
    processes,
) -> Path:
    """Every process writes its shards; rank 0 publishes the checkpoint and prunes old ones."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    target = checkpoint_path(run_dir, step)
    staging = target.with_name("." + target.name + ".partial")
    if processes.main:
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
    processes.barrier()
    model_state, optim_state = get_state_dict(model, optimizer, options=state_options(config))
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(staging))
    processes.barrier()
    if processes.main:
        state = {
            "step": step,
            "tokens": tokens,
            "processes": processes.world,
            "recipe": recipe_identity(config),
        }
        (staging / STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        for old in list_checkpoints(run_dir)[: -config.train.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    processes.barrier()
    return target


def load(model, optimizer, path: Path, config: RunConfig) -> dict[str, object]:
    """Load ``path`` into the (sharded) model and optimizer; returns the trainer state."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    state = read_state(path)
    check_identity(path, state, config)
    options = state_options(config)
    model_state, optim_state = get_state_dict(model, optimizer, options=options)
    loaded: dict[str, Any] = {"model": model_state, "optim": optim_state}
    try:
        dcp.load(loaded, checkpoint_id=str(path))
    except Exception as exc:  # DCP wraps every reader failure in its own exception types
        raise UsageError(f"cannot resume from {path}: {_first_line(exc)}") from None
    set_state_dict(
        model,
        optimizer,
        model_state_dict=loaded["model"],
        optim_state_dict=loaded["optim"],
        options=options,
    )
    return state


def load_weights(model, path: Path, config: RunConfig) -> None:
    """The trained weights of ``path`` into an unsharded model, in one process (export)."""
    import torch.distributed.checkpoint as dcp

    read_state(path)
    try:
        metadata = dcp.FileSystemReader(str(path)).read_metadata()
        saved = {
            key.removeprefix("model.")
            for key in metadata.state_dict_metadata
            if key.startswith("model.")
        }
        state = {k: v for k, v in model.state_dict().items() if k in saved}
        if not state:
            raise UsageError(f"{path} holds no weights of this model")
        with warnings.catch_warnings():  # "assuming ... a single process": yes, on purpose
            warnings.simplefilter("ignore", UserWarning)
            dcp.load({"model": state}, checkpoint_id=str(path), no_dist=True)
    except UsageError:
        raise
    except Exception as exc:  # DCP wraps every reader failure in its own exception types
        raise UsageError(f"cannot read the checkpoint {path}: {_first_line(exc)}") from None
    with torch.no_grad():
        model.load_state_dict(state, strict=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
