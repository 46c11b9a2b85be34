"""Instruction tuning: the training loop of ``bayling-train sft``.

One loop for every setting, one process or many. The processes (``torchrun``, ``accelerate
launch``, or none: a group of one) shard the model with FSDP2 (:mod:`bayling_train.distributed`); the
loop computes the loss on assistant tokens, accumulates gradients, steps a warmup + cosine
schedule, evaluates, logs and checkpoints (:mod:`bayling_train.checkpoint`).

The recipe's global batch (``train.batch_size`` rows per optimizer step) is the same whatever
the process count: N processes each take 1/N of it. The rows of a step, their grouping into
micro-batches and the random numbers of each micro-batch (LoRA dropout) depend only on the
seed, the step and the micro-batch's slot in the step, so a 2-process run computes the
1-process run's losses (up to the order of float additions), and a resumed run -- on any
process count that divides the batch -- the uninterrupted run's.

The loss of a step is the mean over every trained token of the step on every process (not a
mean of per-batch means). SIGTERM and Ctrl-C stop every process at the end of the same step
and save a checkpoint there; ``save_every`` saves on an interval.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from bayling_local.atomic import write_text_atomic
from bayling_local.errors import BaylingError, Cancelled, UsageError
from bayling_local.prompts import get_format

from . import checkpoint as ckpt
from .config import OptimConfig, RunConfig, dump_config
from .data import RunData, Schedule, make_batch, open_data, prepare_data
from .distributed import Processes, is_lost_process, launched_world, lost, shard, start
from .encoding import IGNORE
from .modeling import (
    count_parameters,
    load_model,
    pick_attention,
    pick_precision,
    prepare_base,
)
from .spm import save_tokenizer

CHECKPOINTS = ckpt.CHECKPOINTS
FINAL = "final"
RUN_INFO = "run.json"
METRICS = "metrics.jsonl"
DATA_DIR = "data"


class OutOfMemory(UsageError):
    """The device ran out of memory: the message says which setting to change."""


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


def latest_checkpoint(run_dir: Path) -> Path | None:
    return ckpt.latest(run_dir)


def _needs_explicit_mask(attention: str) -> bool:
    """Before transformers 5, sdpa/eager ignore restarting position ids: pass the 4D mask."""
    import transformers

    return attention != "flash_attention_2" and int(transformers.__version__.split(".")[0]) < 5


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def micro_seed(seed: int, step: int, slot: int) -> int:
    """The random seed of one micro-batch: a function of where it is, not of who runs it."""
    return (seed * 1_000_003 + step * 4_099 + slot) % 2**63


def accumulation(config: RunConfig, world: int) -> int:
    """Micro-batches per process per step, or a one-line refusal when ``world`` cannot split
    the recipe's global batch."""
    if config.method == "qlora" and world > 1:
        raise UsageError(
            f"method qlora runs on one GPU, not {world} processes: this loop does not shard "
            "bitsandbytes' 4-bit weights; use method lora on several GPUs"
        )
    batch, micro = config.train.global_batch, config.train.micro_batch_size
    if batch % (micro * world):
        fits = [n for n in range(1, batch + 1) if batch % (micro * n) == 0]
        raise UsageError(
            f"train.batch_size {batch} cannot be split over {world} processes of "
            f"micro_batch_size {micro}: run on {' or '.join(map(str, fits[-4:]))} "
            f"process{'es' if fits[-1] > 1 else ''}, or change train.micro_batch_size"
        )
    return batch // (micro * world)


def run_sft(
    config: RunConfig,
    *,
    resume: bool | str = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    quiet: bool = False,
) -> RunResult:
    """Train as ``config`` says; returns the losses per step and where the result went."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    logging.getLogger("torch.distributed").setLevel(logging.ERROR)
    try:
        grad_accum = accumulation(config, launched_world())
    except UsageError as exc:
        exc.same_on_every_process = True  # type: ignore[attr-defined]
        raise
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    processes = start(config.train.timeout_minutes)
    run_dir = Path(config.run_dir)
    trainer = _Trainer(config, processes, grad_accum, quiet=quiet or not processes.main)
    try:
        return trainer.run(resume=resume, overwrite=overwrite, stop_after=stop_after)
    except BaylingError:
        raise
    except torch.OutOfMemoryError:
        raise _out_of_memory(config, processes, trainer.step) from None
    except Exception as exc:
        if processes.world > 1 and is_lost_process(exc):
            saved = ckpt.latest(run_dir)
            hint = (
                f"resume from {saved} with --resume"
                if saved is not None
                else "no checkpoint was saved yet"
            )
            raise lost(exc, processes, step=trainer.step, resume_hint=hint) from None
        raise
    finally:
        processes.close()


def _out_of_memory(config: RunConfig, processes: Processes, step: int) -> OutOfMemory:
    t = config.train
    advice = []
    if t.micro_batch_size > 1:
        advice.append(
            f"lower train.micro_batch_size (now {t.micro_batch_size}; the batch of "
            f"{t.global_batch} rows stays, with more accumulation)"
        )
    if not config.model.gradient_checkpointing:
        advice.append("set model.gradient_checkpointing: true")
    advice.append(f"lower data.seq_len (now {config.data.seq_len})")
    if config.method == "full":
        advice.append("use more GPUs, or method lora")
    elif config.method == "lora":
        advice.append("use more GPUs, or method qlora")
    else:
        advice.append("use more GPUs")
    return OutOfMemory(
        f"out of GPU memory at step {step + 1} on process {processes.rank} of "
        f"{processes.world}: " + "; ".join(advice)
    )


class _Trainer:
    """One run's state on one process (the step counter is read by the error handlers)."""

    def __init__(self, config: RunConfig, processes: Processes, grad_accum: int, quiet: bool):
        self.config, self.processes, self.grad_accum, self.quiet = (
            config,
            processes,
            grad_accum,
            quiet,
        )
        self.run_dir = Path(config.run_dir)
        self.step = 0
        self.tokens = 0

    def _prepare(self, resume: bool | str, overwrite: bool):
        """Rank 0 checks the run directory and prepares base and data; the others wait and
        fail with the same message when it fails."""
        config, processes, run_dir = self.config, self.processes, self.run_dir
        fmt = get_format(config.model.prompt_format)
        outcome: list[object] = [None]
        tokenizer = None
        if processes.main:
            try:
                checkpoint = _resume_point(run_dir, resume, overwrite)
                run_dir.mkdir(parents=True, exist_ok=True)
                write_text_atomic(run_dir / "config.yaml", dump_config(config))
                base, tokenizer = prepare_base(config, run_dir)
                prepare_data(
                    config.data,
                    fmt,
                    tokenizer,
                    seed=config.train.seed,
                    directory=run_dir / DATA_DIR,
                    identity=_tokenizer_identity(base, tokenizer, config),
                )
                outcome = [(str(checkpoint) if checkpoint else None, base)]
            except BaylingError as exc:
                outcome = [exc]
        if processes.world > 1:
            torch.distributed.broadcast_object_list(outcome, src=0)
        if isinstance(outcome[0], BaylingError):
            error = outcome[0]
            error.same_on_every_process = True  # type: ignore[attr-defined]
            raise error
        checkpoint_name, base_name = cast(tuple[str | None, str], outcome[0])
        if not processes.main:
            base_name, tokenizer = prepare_base(config, run_dir)
        return (Path(checkpoint_name) if checkpoint_name else None), base_name, tokenizer

    def run(self, *, resume: bool | str, overwrite: bool, stop_after: int | None) -> RunResult:
        config, processes, run_dir, quiet = self.config, self.processes, self.run_dir, self.quiet
        main = processes.main
        _seed_everything(config.train.seed)
        checkpoint, base, tokenizer = self._prepare(resume, overwrite)
        try:  # what fails here fails alike on every process: rank 0 says it
            precision = pick_precision(config)
            attention = pick_attention(config)
            _seed_everything(config.train.seed)  # LoRA's first adapters: alike on every process
            model = load_model(config, base, attention=attention, precision=precision)
        except BaylingError as exc:
            exc.same_on_every_process = True  # type: ignore[attr-defined]
            raise
        data = open_data(run_dir / DATA_DIR)  # may fail on one node only: not marked
        trainable, total = count_parameters(model)
        architecture = _architecture(model)
        if config.method == "qlora":
            # bitsandbytes' 4-bit weights are not sharded by this loop: QLoRA is one GPU's.
            model = model.to(processes.device)
        else:
            model = shard(model, processes, precision=precision)
        schedule = Schedule(
            n_rows=len(data.train),
            micro_batch_size=config.train.micro_batch_size,
            grad_accum=self.grad_accum,
            world_size=processes.world,
            seed=config.train.seed,
        )
        if schedule.steps_per_epoch == 0:
            raise UsageError(
                f"not enough data for one optimizer step: {len(data.train)} packed rows, "
                f"{schedule.rows_per_step} needed (train.batch_size)"
            )
        total_steps = config.train.max_steps or max(
            1, math.ceil(config.train.epochs * schedule.steps_per_epoch)
        )
        warmup = config.optim.warmup_steps or int(config.optim.warmup_ratio * total_steps)
        lr_at = lr_lambda(total_steps, warmup, config.optim.min_lr_ratio)
        optimizer = build_optimizer(model, config.optim)
        if checkpoint is not None:
            state = ckpt.load(model, optimizer, checkpoint, config)
            self.step, self.tokens = int(state["step"]), int(state["tokens"])  # type: ignore[call-overload]
            _log(
                f"resumed from {checkpoint} at step {self.step} "
                f"(saved by {state.get('processes', '?')} processes, now {processes.world})",
                quiet,
            )
        if main:
            _trim_metrics(run_dir / METRICS, self.step)
        _log(
            f"{data.n_examples} examples in {len(data.train)} rows of <= {config.data.seq_len} "
            f"tokens ({data.n_dropped} dropped), {len(data.eval)} eval rows; {total_steps} steps "
            f"of {config.train.global_batch} rows on {processes.world} process"
            f"{'es' if processes.world > 1 else ''} ({self.grad_accum} x "
            f"{config.train.micro_batch_size} each); {trainable:,} of {total:,} parameters "
            f"trained ({config.method}, {precision}, {attention})",
            quiet,
        )
        pad_id = _pad_id(tokenizer)
        explicit_mask = _needs_explicit_mask(attention)
        writer = _tensorboard(run_dir) if main else None
        result = RunResult(run_dir=run_dir, steps=self.step)
        window_loss, window_tokens, window_inputs, window_start = 0.0, 0, 0, time.perf_counter()
        world, rank = processes.world, processes.rank
        model.train()
        processes.catch_stop_signals()
        try:
            while self.step < total_steps:
                if stop_after is not None and self.step >= stop_after:
                    result.stopped_early = True
                    break
                if processes.any(bool(processes.stop_signal)):
                    saved = self._save(model, optimizer)
                    cause = processes.stop_signal[0] if processes.stop_signal else "another process"
                    stopped = Cancelled(
                        f"stopped by {cause} after step {self.step}; checkpoint {saved}; "
                        "continue with --resume"
                    )
                    stopped.same_on_every_process = True  # type: ignore[attr-defined]
                    raise stopped
                plan = schedule.step_rows(self.step)
                everything = [i for micro in plan for rows in micro for i in rows]
                step_tokens = int(data.train.trained[everything].sum())  # type: ignore[attr-defined]
                window_inputs += sum(data.train.row_length(i) for i in everything)  # type: ignore[attr-defined]
                for group in optimizer.param_groups:
                    group["lr"] = config.optim.lr * lr_at(self.step)
                step_loss = torch.zeros((), device=processes.device)
                for m, micro in enumerate(plan):
                    batch = make_batch(data.train, micro[rank], pad_id, explicit_mask=explicit_mask)
                    batch = {k: v.to(processes.device) for k, v in batch.items()}
                    torch.manual_seed(micro_seed(config.train.seed, self.step, m * world + rank))
                    objective, micro_loss = objective_sum(
                        model, batch, config.train.prompt_loss_weight
                    )
                    # Gradients are summed over processes: this makes them the mean per token.
                    (objective / max(1, step_tokens)).backward()
                    step_loss += micro_loss.detach()
                grad_norm = None
                if config.optim.max_grad_norm > 0:
                    grad_norm = _full(
                        torch.nn.utils.clip_grad_norm_(
                            [p for p in model.parameters() if p.requires_grad],
                            config.optim.max_grad_norm,
                        )
                    )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                lr = optimizer.param_groups[0]["lr"]
                self.step += 1
                self.tokens += step_tokens
                step_mean = processes.sum(step_loss).item() / max(1, step_tokens)
                result.losses.append(step_mean)
                window_loss += step_mean * step_tokens
                window_tokens += step_tokens
                if self.step % config.train.log_every == 0 or self.step == total_steps:
                    elapsed = time.perf_counter() - window_start
                    record = {
                        "step": self.step,
                        "loss": window_loss / max(1, window_tokens),
                        "step_loss": step_mean,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "epoch": self.step / schedule.steps_per_epoch,
                        "tokens": self.tokens,
                        "tokens_per_s": window_inputs / elapsed if elapsed > 0 else None,
                        "trained_tokens_per_s": window_tokens / elapsed if elapsed > 0 else None,
                        "processes": world,
                    }
                    _write_metrics(run_dir, record, writer, main)
                    _log(
                        f"step {self.step}/{total_steps}  loss {record['loss']:.4f}  "
                        f"lr {lr:.2e}  {record['tokens_per_s'] or 0:.0f} tokens/s",
                        quiet,
                    )
                    window_loss, window_tokens, window_inputs = 0.0, 0, 0
                    window_start = time.perf_counter()
                if (
                    data.eval
                    and config.train.eval_every
                    and self.step % config.train.eval_every == 0
                ):
                    result.eval_loss = _evaluate(
                        model, data, processes, pad_id, config, explicit_mask
                    )
                    _write_metrics(
                        run_dir, {"step": self.step, "eval_loss": result.eval_loss}, writer, main
                    )
                    _log(f"step {self.step}  eval loss {result.eval_loss:.4f}", quiet)
                if config.train.save_every and self.step % config.train.save_every == 0:
                    self._save(model, optimizer)
        except KeyboardInterrupt:
            raise Cancelled(
                f"interrupted at step {self.step}; resume from the last checkpoint"
            ) from None
        result.steps = self.step
        if result.stopped_early:
            self._save(model, optimizer)
            return result
        if data.eval:
            result.eval_loss = _evaluate(model, data, processes, pad_id, config, explicit_mask)
            _write_metrics(
                run_dir, {"step": self.step, "eval_loss": result.eval_loss}, writer, main
            )
            _log(f"final eval loss {result.eval_loss:.4f}", quiet)
        result.final_dir = _save_final(
            model, tokenizer, run_dir, config, base, architecture, processes, self.step, self.tokens
        )
        if writer is not None:
            writer.close()
        _log(f"saved {result.final_dir}", quiet)
        return result

    def _save(self, model, optimizer) -> Path:
        return ckpt.save(
            model,
            optimizer,
            self.run_dir,
            step=self.step,
            tokens=self.tokens,
            config=self.config,
            processes=self.processes,
        )


def _full(value) -> float:
    """A float from a (possibly distributed) scalar tensor."""
    if hasattr(value, "full_tensor"):
        value = value.full_tensor()
    return float(value)


def _architecture(model) -> str:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(inner).__name__


def _tokenizer_identity(base: str, tokenizer, config: RunConfig) -> dict[str, object]:
    return {
        "tokenizer": config.model.tokenizer or base,
        "vocab": len(tokenizer),
        "prompt_format": config.model.prompt_format,
    }


def _resume_point(run_dir: Path, resume: bool | str, overwrite: bool) -> Path | None:
    if isinstance(resume, str):
        path = Path(resume)
        ckpt.read_state(path)
        return path
    existing = ckpt.latest(run_dir)
    if resume:
        if existing is None:
            raise UsageError(f"{run_dir} has no checkpoint to resume from")
        return existing
    if existing is not None or (run_dir / FINAL).exists():
        if not overwrite:
            raise UsageError(
                f"{run_dir} already holds a run: pass --resume to continue it or --overwrite to start again"
            )
        for name in (CHECKPOINTS, FINAL, METRICS, "base", "tensorboard", DATA_DIR):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return None


def build_optimizer(model, optim: OptimConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on norms and biases."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
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
    model, data: RunData, processes: Processes, pad_id: int, config: RunConfig, explicit_mask: bool
) -> float:
    model.eval()
    total = torch.zeros((), device=processes.device)
    tokens = torch.zeros((), device=processes.device)
    world, mb = processes.world, config.train.micro_batch_size
    mine = list(range(processes.rank, len(data.eval), world))
    # Every process runs the same number of forward passes (FSDP gathers weights in each one);
    # a process out of rows runs a row whose labels are all ignored.
    passes = math.ceil(math.ceil(len(data.eval) / world) / mb)
    for index in range(passes):
        rows = mine[index * mb : (index + 1) * mb]
        batch = make_batch(data.eval, rows or [0], pad_id, explicit_mask=explicit_mask)
        if not rows:
            batch["labels"].fill_(IGNORE)
        batch = {k: v.to(processes.device) for k, v in batch.items()}
        total += loss_sum(model, batch)
        tokens += (batch["labels"][:, 1:] != IGNORE).sum()
    model.train()
    total, tokens = processes.sum(total), processes.sum(tokens)
    return (total / tokens.clamp(min=1)).item()


def _pad_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _save_final(
    model,
    tokenizer,
    run_dir: Path,
    config: RunConfig,
    base: str,
    architecture: str,
    processes: Processes,
    steps: int,
    tokens: int,
) -> Path:
    """The trained weights (adapter or full model), the tokenizer and what export needs.

    The shards are gathered to rank 0 (on the CPU), which writes a plain Hugging Face
    checkpoint or peft adapter.
    """
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    final = run_dir / FINAL
    lora = config.method != "full"
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=lora)
    state = get_model_state_dict(model, options=options)
    if processes.main:
        staging = run_dir / (".final.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if lora:
            from peft.utils import get_peft_model_state_dict

            adapters = get_peft_model_state_dict(model, state_dict=state)
            save_file(
                {k: v.contiguous() for k, v in adapters.items()},
                str(staging / "adapter_model.safetensors"),
                metadata={"format": "pt"},
            )
            adapter_config = copy.deepcopy(model.peft_config["default"])
            adapter_config.inference_mode = True
            adapter_config.save_pretrained(str(staging))
        else:
            model_config = copy.deepcopy(model.config)
            model_config.architectures = [architecture]
            model_config.use_cache = True
            if getattr(model_config, "tie_word_embeddings", False):
                state.pop("lm_head.weight", None)  # stored once, as the input embedding
            save_file(
                {k: cast(torch.Tensor, v).contiguous() for k, v in state.items()},
                str(staging / "model.safetensors"),
                metadata={"format": "pt"},
            )
            model_config.save_pretrained(str(staging))
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.save_pretrained(str(staging))
        save_tokenizer(tokenizer, staging, config.model.tokenizer or base)
        info = {
            "method": config.method,
            "base": base,
            "prompt_format": config.model.prompt_format,
            "steps": steps,
            "trained_tokens": tokens,
            "processes": processes.world,
        }
        write_text_atomic(staging / RUN_INFO, json.dumps(info, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    processes.barrier()
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
