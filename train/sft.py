"""Instruction tuning: the training loop of ``bayling-train sft``.

One loop for every setting. accelerate supplies the device, mixed precision and the
distributed engine (DDP or FSDP, chosen at launch with ``accelerate launch`` or ``torchrun``);
the loop itself only computes the loss on assistant tokens, accumulates gradients, steps a
warmup + cosine schedule, evaluates, logs and checkpoints.

The loss of an optimizer step is the mean over every trained token of the step on every rank
(not a mean of per-batch means), so it does not depend on how rows fall into micro-batches.

Checkpoints (``RUN_DIR/checkpoints/step-N``) hold the trainable weights, the optimizer, the
scheduler, every random number generator and the step; the data position follows from the
step (see :mod:`train.data`). A resumed run therefore computes the same losses as one that was
never stopped. Ctrl-C saves a checkpoint at the last completed step, with the generators as
they were at that step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bayling_local.atomic import write_text_atomic
from bayling_local.errors import Cancelled, UsageError
from bayling_local.prompts import get_format

from .config import OptimConfig, RunConfig, dump_config
from .data import RunData, Schedule, build_data, make_batch
from .encoding import IGNORE
from .modeling import (
    count_parameters,
    load_model,
    pick_attention,
    pick_precision,
    prepare_base,
)
from .spm import save_tokenizer

CHECKPOINTS = "checkpoints"
FINAL = "final"
RUN_INFO = "run.json"
METRICS = "metrics.jsonl"


@dataclass
class TrainerState:
    """Counters saved with every checkpoint (registered with accelerate)."""

    step: int = 0
    tokens: int = 0  # trained (assistant) tokens seen

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "tokens": self.tokens}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.tokens = int(state["step"]), int(state["tokens"])


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)
    eval_loss: float | None = None
    final_dir: Path | None = None
    stopped_early: bool = False


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def lr_lambda(total_steps: int, warmup: int, min_ratio: float):
    """Linear warmup to the peak, then a cosine down to ``min_ratio`` of it."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _rng_snapshot() -> dict[str, object]:
    snapshot: dict[str, object] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        snapshot["cuda"] = torch.cuda.get_rng_state_all()
    return snapshot


def _rng_restore(snapshot: dict[str, object]) -> None:
    random.setstate(snapshot["python"])  # type: ignore[arg-type]
    np.random.set_state(snapshot["numpy"])  # type: ignore[arg-type]
    torch.set_rng_state(snapshot["torch"])  # type: ignore[arg-type]
    if "cuda" in snapshot:
        torch.cuda.set_rng_state_all(snapshot["cuda"])  # type: ignore[arg-type]


def latest_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = sorted(
        (run_dir / CHECKPOINTS).glob("step-*"), key=lambda p: int(p.name.split("-")[1])
    )
    return checkpoints[-1] if checkpoints else None


def _needs_explicit_mask(attention: str) -> bool:
    """Before transformers 5, sdpa/eager ignore restarting position ids: pass the 4D mask."""
    import transformers

    return attention != "flash_attention_2" and int(transformers.__version__.split(".")[0]) < 5


def run_sft(
    config: RunConfig,
    *,
    resume: bool | str = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    quiet: bool = False,
) -> RunResult:
    """Train as ``config`` says; returns the losses per step and where the result went."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Tied embeddings are stored once in a checkpoint, as intended (see the resume below).
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)

    run_dir = Path(config.run_dir)
    checkpoint = _resume_point(run_dir, resume, overwrite)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    precision = pick_precision(config)
    accelerator = Accelerator(mixed_precision=precision, step_scheduler_with_optimizer=False)
    main = accelerator.is_main_process
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.yaml", dump_config(config))
    set_seed(config.train.seed)
    fmt = get_format(config.model.prompt_format)
    attention = pick_attention(config)
    with accelerator.main_process_first():
        base, tokenizer = prepare_base(config, run_dir)
    set_seed(config.train.seed)
    model = load_model(config, base, attention=attention, precision=precision)
    trainable, total = count_parameters(model)
    data = build_data(config.data, fmt, tokenizer, seed=config.train.seed)
    schedule = Schedule(
        n_rows=len(data.train),
        micro_batch_size=config.train.micro_batch_size,
        grad_accum=config.train.grad_accum,
        world_size=accelerator.num_processes,
        seed=config.train.seed,
    )
    if schedule.steps_per_epoch == 0:
        raise UsageError(
            f"not enough data for one optimizer step: {len(data.train)} packed rows, "
            f"{schedule.rows_per_step} needed (micro_batch_size x grad_accum x GPUs)"
        )
    total_steps = config.train.max_steps or max(
        1, math.ceil(config.train.epochs * schedule.steps_per_epoch)
    )
    warmup = config.optim.warmup_steps or int(config.optim.warmup_ratio * total_steps)
    optimizer = build_optimizer(model, config.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(total_steps, warmup, config.optim.min_lr_ratio)
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = TrainerState()
    accelerator.register_for_checkpointing(state)
    _keep_only_trainable_weights(accelerator, config)
    if checkpoint is not None:
        # LoRA checkpoints hold only the adapters; tied embeddings are saved once.
        tied = bool(getattr(accelerator.unwrap_model(model).config, "tie_word_embeddings", False))
        accelerator.load_state(str(checkpoint), strict=config.method == "full" and not tied)
        _log(f"resumed from {checkpoint} at step {state.step}", quiet or not main)
    if main:
        _trim_metrics(run_dir / METRICS, state.step)
    _log(
        f"{data.n_examples} examples in {len(data.train)} rows of <= {config.data.seq_len} tokens "
        f"({data.n_dropped} dropped), {len(data.eval)} eval rows; {total_steps} steps; "
        f"{trainable:,} of {total:,} parameters trained ({config.method}, {precision}, {attention})",
        quiet or not main,
    )
    pad_id = _pad_id(tokenizer)
    explicit_mask = _needs_explicit_mask(attention)
    writer = _tensorboard(run_dir) if main else None
    result = RunResult(run_dir=run_dir, steps=state.step)
    row_tokens = [sum(label != IGNORE for label in row.labels[1:]) for row in data.train]
    window_loss, window_tokens, window_inputs, window_start = 0.0, 0, 0, time.perf_counter()
    snapshot = _rng_snapshot()
    model.train()
    try:
        while state.step < total_steps:
            if stop_after is not None and state.step >= stop_after:
                result.stopped_early = True
                break
            plan = schedule.step_rows(state.step)
            step_tokens = sum(row_tokens[i] for micro in plan for rows in micro for i in rows)
            window_inputs += sum(
                len(data.train[i]) for micro in plan for rows in micro for i in rows
            )
            step_loss = torch.zeros((), device=accelerator.device)
            for m, micro in enumerate(plan):
                batch = make_batch(
                    data.train,
                    micro[accelerator.process_index],
                    pad_id,
                    explicit_mask=explicit_mask,
                )
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                sync = m == len(plan) - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(model):
                    objective, micro_loss = objective_sum(
                        model, batch, config.train.prompt_loss_weight
                    )
                    # DDP/FSDP average gradients over ranks: scale so the result is the mean per token.
                    accelerator.backward(
                        objective * accelerator.num_processes / max(1, step_tokens)
                    )
                step_loss += micro_loss.detach()
            grad_norm = None
            if config.optim.max_grad_norm > 0:
                grad_norm = accelerator.clip_grad_norm_(
                    model.parameters(), config.optim.max_grad_norm
                )
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.tokens += step_tokens
            snapshot = _rng_snapshot()
            step_mean = accelerator.reduce(step_loss, "sum").item() / max(1, step_tokens)
            result.losses.append(step_mean)
            window_loss += step_mean * step_tokens
            window_tokens += step_tokens
            if state.step % config.train.log_every == 0 or state.step == total_steps:
                elapsed = time.perf_counter() - window_start
                record = {
                    "step": state.step,
                    "loss": window_loss / max(1, window_tokens),
                    "step_loss": step_mean,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": None if grad_norm is None else float(grad_norm),
                    "epoch": state.step / schedule.steps_per_epoch,
                    "tokens": state.tokens,
                    "tokens_per_s": window_inputs / elapsed if elapsed > 0 else None,
                    "trained_tokens_per_s": window_tokens / elapsed if elapsed > 0 else None,
                }
                _write_metrics(run_dir, record, writer, main)
                _log(
                    f"step {state.step}/{total_steps}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
                    f"{record['tokens_per_s'] or 0:.0f} tokens/s",
                    quiet or not main,
                )
                window_loss, window_tokens, window_inputs, window_start = (
                    0.0,
                    0,
                    0,
                    time.perf_counter(),
                )
            if data.eval and config.train.eval_every and state.step % config.train.eval_every == 0:
                result.eval_loss = _evaluate(
                    model, data, accelerator, pad_id, config, explicit_mask
                )
                _write_metrics(
                    run_dir, {"step": state.step, "eval_loss": result.eval_loss}, writer, main
                )
                _log(f"step {state.step}  eval loss {result.eval_loss:.4f}", quiet or not main)
            if config.train.save_every and state.step % config.train.save_every == 0:
                _save_checkpoint(accelerator, run_dir, state, config)
    except KeyboardInterrupt:
        _rng_restore(snapshot)
        if state.step > 0:
            saved = _save_checkpoint(accelerator, run_dir, state, config)
            raise Cancelled(f"interrupted; resume from {saved} with --resume") from None
        raise Cancelled("interrupted before the first step") from None
    result.steps = state.step
    if result.stopped_early:
        _save_checkpoint(accelerator, run_dir, state, config)
        return result
    if data.eval:
        result.eval_loss = _evaluate(model, data, accelerator, pad_id, config, explicit_mask)
        _write_metrics(run_dir, {"step": state.step, "eval_loss": result.eval_loss}, writer, main)
        _log(f"final eval loss {result.eval_loss:.4f}", quiet or not main)
    result.final_dir = _save_final(accelerator, model, tokenizer, run_dir, config, base, state)
    if writer is not None:
        writer.close()
    _log(f"saved {result.final_dir}", quiet or not main)
    return result


def _resume_point(run_dir: Path, resume: bool | str, overwrite: bool) -> Path | None:
    if isinstance(resume, str):
        path = Path(resume)
        if not (path / "trainer_state").exists() and not any(path.glob("random_states_*.pkl")):
            raise UsageError(f"{path} is not a checkpoint of bayling-train")
        return path
    existing = latest_checkpoint(run_dir)
    if resume:
        if existing is None:
            raise UsageError(f"{run_dir} has no checkpoint to resume from")
        return existing
    if existing is not None or (run_dir / FINAL).exists():
        if not overwrite:
            raise UsageError(
                f"{run_dir} already holds a run: pass --resume to continue it or --overwrite to start again"
            )
        for name in (CHECKPOINTS, FINAL, METRICS, "base", "tensorboard"):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return None


def build_optimizer(model, optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on norms and biases."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 or "norm" in name else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=optim.lr,
        betas=optim.betas,
        eps=optim.eps,
    )


def forward_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits for a (packed) batch.

    ``use_cache=False`` matters: transformers builds the per-example mask from restarting
    position ids only when no cache is in play.
    """
    inputs = {k: batch[k] for k in ("input_ids", "position_ids", "attention_mask") if k in batch}
    return model(**inputs, use_cache=False).logits


def _cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of next-token predictions (labels shifted by one)."""
    return F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


def loss_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed cross-entropy over the assistant tokens."""
    return _cross_entropy_sum(forward_logits(model, batch), batch["labels"])


def objective_sum(
    model, batch: dict[str, torch.Tensor], prompt_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(what is minimised, the assistant-token loss): the two differ only with a prompt weight."""
    logits = forward_logits(model, batch)
    assistant = _cross_entropy_sum(logits, batch["labels"])
    if prompt_weight == 0:
        return assistant, assistant
    return assistant + prompt_weight * _cross_entropy_sum(logits, batch["prompt_labels"]), assistant


@torch.no_grad()
def _evaluate(
    model, data: RunData, accelerator, pad_id: int, config: RunConfig, explicit_mask: bool
) -> float:
    model.eval()
    total = torch.zeros((), device=accelerator.device)
    tokens = torch.zeros((), device=accelerator.device)
    world, mb = accelerator.num_processes, config.train.micro_batch_size
    mine = list(range(accelerator.process_index, len(data.eval), world))
    # Every rank runs the same number of forward passes (FSDP gathers weights in each one);
    # a rank out of rows runs a row whose labels are all ignored.
    passes = math.ceil(math.ceil(len(data.eval) / world) / mb)
    for index in range(passes):
        rows = mine[index * mb : (index + 1) * mb]
        batch = make_batch(data.eval, rows or [0], pad_id, explicit_mask=explicit_mask)
        if not rows:
            batch["labels"].fill_(IGNORE)
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        total += loss_sum(model, batch)
        tokens += (batch["labels"][:, 1:] != IGNORE).sum()
    model.train()
    total, tokens = accelerator.reduce(total, "sum"), accelerator.reduce(tokens, "sum")
    return (total / tokens.clamp(min=1)).item()


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _keep_only_trainable_weights(accelerator, config: RunConfig) -> None:
    """LoRA checkpoints hold the adapters, not another copy of the frozen base."""
    if config.method == "full":
        return

    def hook(models, weights, output_dir) -> None:
        for model, state in zip(models, weights):
            names = {name for name, p in model.named_parameters() if p.requires_grad}
            for key in list(state):
                if key not in names:
                    del state[key]

    accelerator.register_save_state_pre_hook(hook)


def _save_checkpoint(accelerator, run_dir: Path, state: TrainerState, config: RunConfig) -> Path:
    target = run_dir / CHECKPOINTS / f"step-{state.step:07d}"
    accelerator.save_state(str(target))
    if accelerator.is_main_process:
        (target / "trainer_state").write_text(
            json.dumps(state.state_dict()) + "\n", encoding="utf-8"
        )
        checkpoints = sorted((run_dir / CHECKPOINTS).glob("step-*"))
        for old in checkpoints[: -config.train.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return target


def _save_final(
    accelerator, model, tokenizer, run_dir: Path, config: RunConfig, base: str, state: TrainerState
) -> Path:
    """The trained weights (adapter or full model), the tokenizer and what export needs."""
    final = run_dir / FINAL
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state_dict = accelerator.get_state_dict(model)
    if config.method == "full":
        unwrapped.config.use_cache = True
    unwrapped.save_pretrained(
        str(final),
        state_dict=state_dict,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        safe_serialization=True,
    )
    if accelerator.is_main_process:
        save_tokenizer(tokenizer, final, config.model.tokenizer or base)
        info = {
            "method": config.method,
            "base": base,
            "prompt_format": config.model.prompt_format,
            "steps": state.step,
            "trained_tokens": state.tokens,
        }
        write_text_atomic(final / RUN_INFO, json.dumps(info, indent=2) + "\n")
    accelerator.wait_for_everyone()
    return final


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, forget what was logged after the checkpoint: those steps run again."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and json.loads(line)["step"] <= step
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _write_metrics(run_dir: Path, record: dict[str, object], writer, main: bool) -> None:
    if not main:
        return
    with (run_dir / METRICS).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    if writer is not None:
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float):
                writer.add_scalar(
                    f"train/{key}" if key != "eval_loss" else "eval/loss", value, record["step"]
                )


def _tensorboard(run_dir: Path):
    """A TensorBoard writer when tensorboard is installed, else nothing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
