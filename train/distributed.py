"""The processes of one training run: process group, FSDP2 sharding, stop signals, failures.

Every run has a process group, one process or many, so there is one training loop:

- launched by ``torchrun`` or ``accelerate launch`` (``WORLD_SIZE`` etc. in the environment),
  the processes join the launcher's rendezvous; alone, the process makes a group of one;
- the model is sharded with FSDP2 (``fully_shard``: each decoder layer, then the root), with
  gradients *summed* over processes (the loop divides by the step's trained tokens itself);
- NCCL on GPUs, gloo on CPU, with a timeout on every collective, so that when a process or
  node dies the others stop with :class:`LostProcess` instead of hanging;
- SIGTERM (a scheduler's preemption, ``torchrun`` stopping its workers) and Ctrl-C set a flag
  that every process checks at the end of a step, so all of them stop at the same step.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from bayling_local.errors import BaylingError


class LostProcess(BaylingError):
    """Another process of the run died, or stopped answering within the timeout."""

    exit_code = 1


@dataclass
class Processes:
    """This process's place in the run."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    timeout: timedelta
    stop_signal: list[str] = field(default_factory=list)
    _previous: dict[int, object] = field(default_factory=dict)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over processes (a copy on this process's device)."""
        out = tensor.detach().clone().to(self.device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def any(self, flag: bool) -> bool:
        """True on every process when it is true on one (the stop decision)."""
        return bool(self.sum(torch.tensor(float(flag))).item() > 0)

    def catch_stop_signals(self) -> None:
        """SIGTERM and SIGINT stop the run at the end of the step (a second one at once)."""

        def handler(signum, frame) -> None:
            name = signal.Signals(signum).name
            if self.stop_signal:
                self.restore_signals()
                raise KeyboardInterrupt
            self.stop_signal.append(name)

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: left to the caller
                self._previous[signum] = signal.signal(signum, handler)

    def restore_signals(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def close(self) -> None:
        self.restore_signals()
        if dist.is_initialized():
            dist.destroy_process_group()


def launched_world() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(timeout_minutes: float) -> Processes:
    """Join the launcher's process group, or make a group of one."""
    timeout = timedelta(minutes=timeout_minutes)
    cuda = torch.cuda.is_available()
    world = launched_world()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if cuda else "gloo"
    if dist.is_initialized():
        dist.destroy_process_group()
    try:
        if world > 1:
            dist.init_process_group(backend, timeout=timeout)
        else:
            # A group of one needs no rendezvous: an in-memory store.
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    except (RuntimeError, ValueError) as exc:
        raise LostProcess(f"cannot join the other training processes: {_first_line(exc)}") from None
    return Processes(rank, world, local_rank, device, timeout)


def shard(model, processes: Processes, *, precision: str):
    """FSDP2 over all processes: each decoder layer a unit, the rest (embeddings, head) the root.

    bf16/fp16 mixed precision keeps fp32 shards (the optimizer's master weights and fp32
    gradient reduction) and computes in half precision; a frozen LoRA base stays as loaded.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    policy = (
        MixedPrecisionPolicy(param_dtype=half, reduce_dtype=torch.float32)
        if half is not None
        else MixedPrecisionPolicy()
    )
    mesh = init_device_mesh(processes.device.type, (processes.world,))
    layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            # Sum, not mean: the loop scales by 1 / (trained tokens of the whole step).
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)  # plain SUM: gloo has no PREMUL_SUM
    return model


def is_lost_process(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because another process is gone or stuck."""
    if isinstance(exc, dist.DistNetworkError | dist.DistStoreError):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "connection closed",
            "connection reset",
            "connection refused",
            "timed out",
            "timeout",
            "broken pipe",
            "by peer",
            "nccl communicator was aborted",
            "watchdog",
        )
    )


def lost(exc: BaseException, processes: Processes, *, step: int, resume_hint: str) -> LostProcess:
    """The one line a surviving process prints when the others are gone."""
    minutes = processes.timeout.total_seconds() / 60
    cause = _first_line(exc)
    timed_out = "timed out" in cause.lower() or "timeout" in cause.lower()
    what = (
        f"no answer from the other processes within {minutes:g} min (train.timeout_minutes)"
        if timed_out
        else "another training process or node died"
    )
    # gloo's "[.../pair.cc:537] Read error [host]:port: Connection reset by peer. This is ...":
    # the source location and the advice after the first sentence say nothing to the user.
    cause = re.sub(r"^\[[^\]]*\]\s*", "", cause).split(". ")[0]
    if len(cause) > 160:
        cause = cause[:157] + "..."
    return LostProcess(
        f"process {processes.rank} of {processes.world} stops at step {step}: {what} "
        f"({cause}); {resume_hint}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
