"""Several training processes for real, on CPU: ``torchrun`` (gloo) runs of tiny-cpu.yaml.

Each launch starts real processes (``python -m torch.distributed.run``, which is ``torchrun``)
that shard the model with FSDP2, save sharded checkpoints with torch.distributed.checkpoint,
and are compared with one process running the same recipe in this test process.

Tolerance: the 2-process losses equal the 1-process ones within a relative 1e-5. Both runs see
the same rows in the same micro-batches with the same random numbers; only the order of float
additions differs (gradients summed across processes by gloo, the gradient norm summed from
shards, the thread count of the matrix products), a few float32 roundings per step
(about 1e-7 each) that the steps carry on. The exported weights then agree within 1e-4
relative (1e-6 absolute).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bayling_train.cli import main
from bayling_train.config import load_config
from bayling_train.demo import DemoDataOptions, build_demo_data
from bayling_train.sft import run_sft

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "train" / "recipes" / "tiny-cpu.yaml"
RTOL = 1e-5
STEPS = 6
LONG = 40  # steps of the runs that are stopped part-way (their schedule is this long)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="gloo and signals: POSIX only")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    build_demo_data(path, None, DemoDataOptions(records=300, seed=2))
    return path


def _settings(run_dir: Path, corpus: Path, method: str, base: Path | None, **extra) -> dict:
    settings: dict[str, object] = {
        "run_dir": str(run_dir),
        "data.train": [str(corpus)],
        "train.max_steps": STEPS,
        "train.log_every": 1,
        "train.eval_every": None,
        "train.save_every": 3,
        "train.timeout_minutes": 2,
    }
    if method == "lora":
        settings.update(
            {
                "method": "lora",
                "model.scratch": None,
                "model.train_tokenizer": None,
                "model.base": str(base),
                "lora.r": 8,
                "lora.alpha": 16,
                "lora.dropout": 0.1,  # random numbers in the forward pass: slots decide them
                "optim.lr": 2.0e-2,
            }
        )
    settings.update(extra)
    return settings


def _cli_args(settings: dict) -> list[str]:
    args = []
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "0"})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(launch: list[str], settings: dict, *sft_args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
        "-m",
        "bayling_train.cli",
        "sft",
        str(RECIPE),
        "-q",
        *_cli_args({"train.threads": 1, **settings}),
        *sft_args,
    ]


STANDALONE = ["--standalone", "--nproc_per_node", "2"]


def _run(command: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _losses(run_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["step_loss"] for r in records if "step_loss" in r]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("bayling-train: error:")]


def _wait_for(predicate, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"ended before the test stopped it: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run")
        time.sleep(0.05)


def _kill_job(process: subprocess.Popen) -> None:
    """SIGKILL a launcher and its workers at once, as when a machine loses power (torchrun
    starts each worker in a session of its own, so its process group is not enough)."""
    import psutil

    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    process.wait()


def _logged_steps(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


# --- one process (in this test process) --------------------------------------------------


@pytest.fixture(scope="module")
def one_full(tmp_path_factory, corpus):
    run_dir = tmp_path_factory.mktemp("one-full") / "run"
    settings = _settings(run_dir, corpus, "full", None)
    return run_sft(load_config(RECIPE, settings), quiet=True)


@pytest.fixture(scope="module")
def one_lora_long(tmp_path_factory, corpus, tiny_spm_checkpoint):
    """LoRA with a 40-step schedule, stopped after 6 steps: what resumed runs must match."""
    run_dir = tmp_path_factory.mktemp("one-lora") / "run"
    settings = _settings(run_dir, corpus, "lora", tiny_spm_checkpoint, **{"train.max_steps": LONG})
    return run_sft(load_config(RECIPE, settings), stop_after=STEPS, quiet=True)


@pytest.fixture(scope="module")
def two_full(tmp_path_factory, corpus):
    run_dir = tmp_path_factory.mktemp("two-full") / "run"
    done = _run(_torchrun(STANDALONE, _settings(run_dir, corpus, "full", None)))
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


def test_two_processes_match_one_full_fine_tuning(one_full, two_full):
    assert len(one_full.losses) == STEPS
    assert _losses(two_full) == pytest.approx(one_full.losses, rel=RTOL)
    assert _losses(one_full.run_dir) == pytest.approx(one_full.losses, rel=1e-12)
    # Sharded: one file of shards per process, and what resuming needs to know.
    checkpoint = two_full / "checkpoints" / "step-0000006"
    assert sorted(p.name for p in checkpoint.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["step"] == STEPS and state["processes"] == 2
    info = json.loads((two_full / "final" / "run.json").read_text())
    assert info["processes"] == 2 and info["steps"] == STEPS


def _gguf_difference(a: Path, b: Path) -> float:
    """Largest relative difference of two F32 GGUFs with the same header (0.0: identical)."""
    from bayling_local.gguf_file import inspect_gguf

    assert inspect_gguf(a).metadata == inspect_gguf(b).metadata
    x, y = np.fromfile(a, np.uint8), np.fromfile(b, np.uint8)
    assert x.size == y.size
    differ = np.flatnonzero(x != y)
    if not differ.size:
        return 0.0
    start = int(differ[0]) - int(differ[0]) % 4  # tensor data is 32-byte aligned float32
    end = start + (x.size - start) // 4 * 4
    fx, fy = x[start:end].view(np.float32), y[start:end].view(np.float32)
    np.testing.assert_allclose(fx, fy, rtol=1e-4, atol=1e-6)
    scale = np.maximum(np.abs(fx), 1e-6)
    return float(np.max(np.abs(fx - fy) / scale))


def test_export_of_a_sharded_checkpoint_equals_the_one_process_export(one_full, two_full, tmp_path):
    one = tmp_path / "one.gguf"
    assert main(["export", str(one_full.run_dir), "-o", str(one), "--outtype", "f32"]) == 0
    # The same weights by the other road (the 1-process checkpoint, read by DCP): identical.
    same = tmp_path / "same.gguf"
    one_checkpoint = one_full.run_dir / "checkpoints" / "step-0000006"
    assert main(["export", str(one_checkpoint), "-o", str(same), "--outtype", "f32"]) == 0
    assert same.read_bytes() == one.read_bytes()
    # The 2-process run: its sharded checkpoint straight to a GGUF, and its gathered final.
    sharded = tmp_path / "sharded.gguf"
    checkpoint = two_full / "checkpoints" / "step-0000006"
    assert main(["export", str(checkpoint), "-o", str(sharded), "--outtype", "f32"]) == 0
    final = tmp_path / "final.gguf"
    assert main(["export", str(two_full), "-o", str(final), "--outtype", "f32"]) == 0
    assert sharded.read_bytes() == final.read_bytes()
    _gguf_difference(sharded, one)


# --- LoRA: killed, resumed --------------------------------------------------------------


def test_lora_killed_and_resumed_on_two_processes(
    one_lora_long, corpus, tiny_spm_checkpoint, tmp_path
):
    """SIGKILL the whole 2-process run after its first checkpoint; --resume continues exactly.

    With activation checkpointing, which the 1-process reference runs without: recomputing
    the layers (dropout included) changes nothing.
    """
    run_dir = tmp_path / "run"
    settings = _settings(
        run_dir,
        corpus,
        "lora",
        tiny_spm_checkpoint,
        **{
            "train.max_steps": LONG,
            "train.save_every": 2,
            "model.gradient_checkpointing": True,
        },
    )
    process = subprocess.Popen(
        _torchrun(STANDALONE, settings),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: (run_dir / "checkpoints" / "step-0000002").exists(), process)
    finally:
        _kill_job(process)
    assert not (run_dir / "final").exists()
    resumed = _run(_torchrun(STANDALONE, settings, "--resume", "--stop-after", str(STEPS)))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _losses(run_dir) == pytest.approx(one_lora_long.losses, rel=RTOL)
    checkpoint = run_dir / "checkpoints" / "step-0000006"
    assert len(list(checkpoint.glob("*.distcp"))) == 2


# --- SIGTERM, resumed on another process count --------------------------------------------


def test_sigterm_saves_and_one_process_resumes(corpus, tmp_path):
    """torchrun gets SIGTERM (as from a scheduler): both processes stop at the same step and
    save; one process then resumes the 2-process checkpoint (DCP reshards it)."""
    run_dir = tmp_path / "run"
    settings = _settings(
        run_dir, corpus, "full", None, **{"train.max_steps": LONG, "train.save_every": None}
    )
    process = subprocess.Popen(
        _torchrun(STANDALONE, settings),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: _logged_steps(run_dir) >= 2, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        _kill_job(process)
    assert process.returncode != 0
    stopped = [line for line in _errors(stderr) if "stopped by SIGTERM" in line]
    assert len(stopped) == 1, stderr[-3000:]  # printed by rank 0 only
    (checkpoint,) = (run_dir / "checkpoints").glob("step-*")
    step = int(checkpoint.name.split("-")[1])
    assert 2 <= step <= LONG - 4 and f"after step {step};" in stopped[0]
    assert len(list(checkpoint.glob("*.distcp"))) == 2
    saved_losses = _losses(run_dir)
    # The 1-process reference, stopped two steps after the checkpoint.
    reference = run_sft(
        load_config(RECIPE, {**settings, "run_dir": str(tmp_path / "reference")}),
        stop_after=step + 2,
        quiet=True,
    )
    assert saved_losses[:step] == pytest.approx(reference.losses[:step], rel=RTOL)
    resumed = run_sft(load_config(RECIPE, settings), resume=True, stop_after=step + 2, quiet=True)
    assert resumed.losses == pytest.approx(reference.losses[step:], rel=RTOL)


# --- two nodes, and one of them dying -----------------------------------------------------


def _node_command(port: int, settings: dict) -> list[str]:
    launch = [
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "bayling-test",
    ]
    return _torchrun(launch, settings)


def _start_nodes(settings: dict) -> list[subprocess.Popen]:
    port = _free_port()
    return [
        subprocess.Popen(
            _node_command(port, settings),
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]


def _stop_all(nodes: list[subprocess.Popen]) -> None:
    for node in nodes:
        _kill_job(node)


def test_two_nodes_on_one_machine(one_full, corpus, tmp_path):
    run_dir = tmp_path / "run"
    nodes = _start_nodes(_settings(run_dir, corpus, "full", None))
    try:
        outputs = [node.communicate(timeout=240)[1] for node in nodes]
    finally:
        _stop_all(nodes)
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert _losses(run_dir) == pytest.approx(one_full.losses, rel=RTOL)
    state = json.loads(
        (run_dir / "checkpoints" / "step-0000006" / "trainer_state.json").read_text()
    )
    assert state["processes"] == 2


def test_a_dead_node_stops_the_other_with_one_line(corpus, tmp_path):
    run_dir = tmp_path / "run"
    settings = _settings(
        run_dir,
        corpus,
        "full",
        None,
        **{"train.max_steps": LONG, "train.save_every": 2, "train.timeout_minutes": 1},
    )
    nodes = _start_nodes(settings)
    try:
        _wait_for(lambda: _logged_steps(run_dir) >= 3, nodes[0])
        # Which node holds rank 0 is the rendezvous' choice: kill the one that does not.
        _kill_job(nodes[1])
        started = time.monotonic()
        _, stderr = nodes[0].communicate(timeout=90)
        waited = time.monotonic() - started
    finally:
        _stop_all(nodes)
    assert nodes[0].returncode != 0
    lines = _errors(stderr)
    assert len(lines) == 1, stderr[-3000:]
    assert "of 2 stops at step" in lines[0] and "died" in lines[0], lines[0]
    assert "Connection" in lines[0] and "pair.cc" not in lines[0], lines[0]
    assert "resume from" in lines[0] and "--resume" in lines[0]
    assert waited < 60  # the timeout is 1 min: a dead peer is noticed at once, not timed out


def test_accelerate_launch_with_the_shipped_config(one_full, corpus, tmp_path):
    """The 8-GPU accelerate file, told to start 2 processes (no GPU here: gloo on CPU)."""
    run_dir = tmp_path / "run"
    settings = _settings(run_dir, corpus, "full", None, **{"train.max_steps": 2})
    config = ROOT / "train" / "recipes" / "fsdp-8gpu.accelerate.yaml"
    command = _torchrun([], settings)
    command[1:3] = ["-m", "accelerate.commands.launch"]
    command[3:3] = ["--config_file", str(config), "--num_processes", "2"]
    done = _run(command)
    assert done.returncode == 0, done.stderr[-3000:]
    # Warmup: the first two steps' learning rates do not depend on the run's length.
    assert _losses(run_dir) == pytest.approx(one_full.losses[:2], rel=RTOL)
    assert json.loads((run_dir / "final" / "run.json").read_text())["processes"] == 2


# --- refusals ------------------------------------------------------------------------------


def test_a_process_count_that_does_not_split_the_batch(corpus, tmp_path, capsys, monkeypatch):
    """Checked before any process group forms, from the launcher's environment: rank 0 says it,
    the other ranks exit with the same code in silence."""
    settings = _settings(tmp_path / "run", corpus, "full", None, **{"train.batch_size": 4})
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["sft", str(RECIPE), *_cli_args(settings)]) == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert main(["sft", str(RECIPE), *_cli_args(settings)]) == 2
    assert capsys.readouterr().err.strip() == (
        "bayling-train: error: train.batch_size 4 cannot be split over 2 processes of "
        "micro_batch_size 4: run on 1 process, or change train.micro_batch_size"
    )
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_from_another_recipe(one_full, corpus, tiny_spm_checkpoint, tmp_path, capsys):
    checkpoint = one_full.run_dir / "checkpoints" / "step-0000006"
    settings = _settings(tmp_path / "run", corpus, "lora", tiny_spm_checkpoint)
    code = main(["sft", str(RECIPE), *_cli_args(settings), "--resume-from", str(checkpoint)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"bayling-train: error: {checkpoint} was saved by another recipe (method: full there, "
        "lora here): resume it with its own recipe, or start again with --overwrite"
    )
    code = main(["sft", str(RECIPE), "--resume-from", str(tmp_path), *_cli_args(settings)])
    assert code == 2
    assert "is not a checkpoint of bayling-train" in capsys.readouterr().err


def test_out_of_memory_says_what_to_change(corpus, tmp_path, capsys, monkeypatch):
    """No GPU here: the loop meets the error torch raises when CUDA memory runs out."""
    import torch

    import bayling_train.sft

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(bayling_train.sft, "objective_sum", out_of_memory)
    settings = _settings(tmp_path / "run", corpus, "full", None)
    assert main(["sft", str(RECIPE), "-q", *_cli_args(settings)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "bayling-train: error: out of GPU memory at step 1 on process 0 of 1: lower "
        "train.micro_batch_size (now 4; the batch of 8 rows stays, with more accumulation); "
        "set model.gradient_checkpointing: true; lower data.seq_len (now 256); use more GPUs, "
        "or method lora"
    )
