"""Beam search against transformers' ``generate(num_beams=N, do_sample=False)``.

The tiny checkpoint of the fixtures is converted to F32 GGUF by ``convert/``; both sides start
from the same token ids, and must return the same n-best sequences with the same
length-normalised scores (llama.cpp's and torch's F32 logits differ by ~1e-6, so scores are
compared to 1e-3).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling_local.batch import BatchEngine, DecodeRequest
from bayling_local.engine import Engine, EngineConfig, SamplingConfig

# Prompts on which the random tiny models have no near-tie among the beams: on a near-tie the
# 1e-6 logit difference between the two implementations may pick either side.
PROMPTS = ["Translate: the weather is nice today.", "Hello world, how are", "Der Hund"]
MAX_NEW = 20


@pytest.mark.parametrize("beams", [2, 4])
@pytest.mark.parametrize("kind", ["spm", "bpe"])
def test_beam_search_matches_transformers(
    kind: str,
    beams: int,
    tiny_spm_gguf: Path,
    tiny_bpe_gguf: Path,
    tiny_spm_checkpoint: Path,
    tiny_bpe_checkpoint: Path,
) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gguf, checkpoint = (
        (tiny_spm_gguf, tiny_spm_checkpoint)
        if kind == "spm"
        else (tiny_bpe_gguf, tiny_bpe_checkpoint)
    )
    model = transformers.LlamaForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    torch.set_num_threads(1)  # a tiny model: more threads only spin on a shared machine
    with (
        Engine(EngineConfig(gguf, threads=1)) as engine,
        BatchEngine(engine, parallel=len(PROMPTS), beam=beams) as batch,
    ):
        ends = sorted(engine.stop_token_ids)
        ours = batch.run(
            [
                DecodeRequest(p, SamplingConfig(max_tokens=MAX_NEW), beam=beams, n_best=beams)
                for p in PROMPTS
            ]
        )
        for prompt, result in zip(PROMPTS, ours):
            ids = engine.tokenize(prompt)
            with torch.no_grad():
                out = model.generate(
                    torch.tensor([ids]),
                    num_beams=beams,
                    num_return_sequences=beams,
                    do_sample=False,
                    max_new_tokens=MAX_NEW,
                    length_penalty=1.0,
                    early_stopping=False,
                    eos_token_id=ends,
                    pad_token_id=ends[0],
                    output_scores=True,
                    return_dict_in_generate=True,
                )
            theirs = []
            for sequence, score in zip(out.sequences, out.sequences_scores):
                tokens = sequence[len(ids) :].tolist()
                while tokens and tokens[-1] in ends:  # the end token and the padding after it
                    tokens.pop()
                theirs.append((engine.detokenize(tokens), float(score)))
            assert [t for t, _ in result.alternatives] == [t for t, _ in theirs][
                : len(result.alternatives)
            ]
            for (_, a), (_, b) in zip(result.alternatives, theirs):
                assert a == pytest.approx(b, abs=1e-3)
