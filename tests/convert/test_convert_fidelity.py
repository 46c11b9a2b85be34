"""A converted GGUF is the model it came from: logits, greedy continuations, token ids.

transformers runs the Hugging Face checkpoint (float32) and llama.cpp runs the GGUF on the same
token ids. F32 must match to 1e-3 of the largest logit (a correct conversion reaches ~1e-6);
F16 from an fp16 checkpoint (as BayLing publishes) to 1e-2; greedy continuations of 32 tokens
must be identical token for token (for F16: except where the reference itself is at a near-tie).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_convert import convert_checkpoint, verify_gguf
from tests.support.tiny import make_tiny_checkpoint, sample_lines

# One line per language (the WMT files hold 40 lines each), plus one of the edge cases.
PROMPTS = [line for line in sample_lines()[::40] if line.strip()]


@pytest.mark.parametrize("kind", ["spm", "bpe"])
def test_f32_logits_match_transformers(kind: str, request: pytest.FixtureRequest) -> None:
    checkpoint: Path = request.getfixturevalue(f"tiny_{kind}_checkpoint")
    gguf: Path = request.getfixturevalue(f"tiny_{kind}_gguf")
    report = verify_gguf(
        gguf, checkpoint, prompts=PROMPTS, lines=sample_lines(), greedy_tokens=32, threads=1
    )
    assert report.gguf_type == "F32"
    assert report.max_abs_logit > 1.0  # the model is not trivially flat
    assert report.rel_logit_diff < 1e-3, report.lines()
    assert report.greedy_hf == report.greedy_gguf  # identical, not merely tie-tolerant
    assert all(len(tokens) == 32 for tokens in report.greedy_gguf)
    assert report.tokenizer_mismatches == []
    assert report.ok


@pytest.fixture(scope="module", params=["spm", "bpe"])
def fp16_checkpoint(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A checkpoint stored in fp16, as the published BayLing weights are."""
    return make_tiny_checkpoint(
        tmp_path_factory.mktemp("fp16") / "hf", request.param, dtype="float16", seed=1
    )


def test_f16_close_and_greedy_identical(fp16_checkpoint: Path, tmp_path: Path) -> None:
    gguf = convert_checkpoint(
        fp16_checkpoint, tmp_path / "m.gguf", outtype="f16", show_progress=False
    )
    report = verify_gguf(
        gguf,
        fp16_checkpoint,
        prompts=PROMPTS,
        lines=sample_lines()[:40],
        greedy_tokens=32,
        threads=1,
    )
    assert report.gguf_type == "F16"
    assert report.rel_logit_diff < 1e-2, report.lines()
    # Half-precision matmuls may flip a choice where the reference's top two logits are within
    # rounding of each other; any other difference fails. Most continuations stay identical.
    assert report.greedy_agrees, report.lines()
    assert report.greedy_identical >= 0.8 * len(report.greedy_hf), report.lines()
    assert report.ok


def test_bf16_and_q8_0_stay_close(tiny_bpe_checkpoint: Path, tmp_path: Path) -> None:
    for outtype, kind in (("bf16", "BF16"), ("q8_0", "Q8_0")):
        gguf = convert_checkpoint(
            tiny_bpe_checkpoint, tmp_path / f"{outtype}.gguf", outtype=outtype, show_progress=False
        )
        report = verify_gguf(
            gguf, tiny_bpe_checkpoint, prompts=PROMPTS[:4], lines=(), greedy_tokens=8, threads=1
        )
        assert report.gguf_type == kind
        assert report.rel_logit_diff < 0.1, report.lines()
        assert report.top1_agreement > 0.85
