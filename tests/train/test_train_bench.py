"""The GPU throughput benchmark, run on CPU with a tiny shape (the figures need a GPU)."""

from __future__ import annotations

import json

import pytest

from bayling_train.bench import (
    SHAPES,
    flops_per_token,
    largest_full_shape,
    parameter_count,
    run_bench,
)
from bayling_train.cli import main


def test_bench_runs_on_cpu_and_reports(capsys):
    assert (
        main(
            [
                "bench",
                "--shape",
                "tiny",
                "--method",
                "lora",
                "--device",
                "cpu",
                "--seq-len",
                "64",
                "--steps",
                "2",
                "--warmup",
                "1",
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    [result] = json.loads(captured.out)
    assert result["tokens_per_s"] > 0 and result["method"] == "lora" and result["device"] == "cpu"
    assert result["mfu"] is None and result["peak_memory_gib"] is None  # no known peak on CPU
    assert "tokens/s" in captured.err


def test_full_bench_with_a_given_peak_reports_mfu():
    result = run_bench(
        "tiny", "full", seq_len=32, steps=1, warmup=0, device="cpu", checkpointing=False, peak=1.0
    )
    assert result.mfu is not None and result.mfu > 0
    assert result.trainable_params_m == pytest.approx(parameter_count(SHAPES["tiny"])[1] / 1e6)


def test_model_flops_and_shapes():
    n, total = parameter_count(SHAPES["llama3-8b"])
    assert total == pytest.approx(8.03e9, rel=0.01)  # Llama-3-8B
    assert parameter_count(SHAPES["llama2-7b"])[1] == pytest.approx(6.74e9, rel=0.01)
    assert parameter_count(SHAPES["llama2-13b"])[1] == pytest.approx(13.0e9, rel=0.01)
    assert flops_per_token(SHAPES["llama3-8b"], 2048, "full") == pytest.approx(
        6 * n + 12 * 32 * 4096 * 2048
    )
    assert flops_per_token(SHAPES["llama3-8b"], 2048, "lora") < flops_per_token(
        SHAPES["llama3-8b"], 2048, "full"
    )
    assert largest_full_shape(80 * 2**30) == "llama3.2-3b"
    assert largest_full_shape(141 * 2**30) == "llama2-7b"


def test_bench_refusals(capsys):
    assert main(["bench", "--shape", "llama9-1t", "--device", "cpu"]) == 2
    assert "unknown shape 'llama9-1t'" in capsys.readouterr().err
