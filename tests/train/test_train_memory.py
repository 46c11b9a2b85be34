"""The memory estimate of docs/TRAINING.md (``bayling-train memory``), term by term."""

from __future__ import annotations

import pytest

from bayling_local.errors import UsageError
from bayling_train.bench import SHAPES, parameter_count
from bayling_train.cli import main
from bayling_train.memory import GIB, OVERHEAD, estimate, lora_parameters


def test_sharded_state_is_divided_by_the_gpu_count():
    _, total = parameter_count(SHAPES["llama2-7b"])
    assert 6.7e9 < total < 6.8e9  # Llama-2-7B
    full = estimate("llama2-7b", "full", gpus=8, micro_batch_size=2)
    assert full.parts["state"] == pytest.approx(16 * total / 8)
    lora = estimate("llama2-7b", "lora", gpus=1, micro_batch_size=4)
    adapters = lora_parameters(SHAPES["llama2-7b"], 64)
    assert 150e6 < adapters < 170e6  # r=64 on all seven projections of 32 layers
    assert lora.parts["state"] == pytest.approx(2 * total + 16 * adapters)
    assert full.parts["overhead"] == OVERHEAD


def test_more_gpus_less_memory_and_qlora_least_on_one():
    per = {
        (m, g): estimate("llama2-13b", m, gpus=g, micro_batch_size=4).total
        for m, g in [("full", 8), ("full", 16), ("lora", 1), ("lora", 8), ("qlora", 1)]
    }
    assert per["full", 16] < per["full", 8]
    assert per["lora", 8] < per["lora", 1]
    assert per["qlora", 1] < per["lora", 1]
    # Llama 3's 128k vocabulary: the logits of 4 x 2048 tokens alone are about 10 GiB.
    logits = estimate("llama3-8b", "lora", micro_batch_size=4).parts["logits"]
    assert 9.5 * GIB < logits < 10.5 * GIB


def test_refusals_and_the_command(capsys):
    with pytest.raises(UsageError, match="qlora runs on one GPU"):
        estimate("llama2-7b", "qlora", gpus=8)
    with pytest.raises(UsageError, match="unknown shape"):
        estimate("gpt-5", "full")
    assert main(["memory"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model | full x8 (mb 2) |") and "| BayLing-2-13B |" in out
