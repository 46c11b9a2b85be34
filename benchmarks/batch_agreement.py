"""How far batched decoding is from decoding alone: greedy tokens and logits, per model.

Each of N prompts (the first lines of a file, as translation instructions) is decoded alone,
greedy; then all N together on the batch layout (a KV stream per sequence). Reports how many
sequences give identical tokens, and the largest logit difference over the steps where both
still agree (the batched run is fed the alone run's tokens, so every step is comparable):

    python benchmarks/batch_agreement.py --gguf bayling_local/demo/bayling-demo.gguf \\
        --input ../shared/data/wmt22/enzh.src --n 8 --tokens 48 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayling_local.decoder import Decoder, Job  # noqa: E402
from bayling_local.engine import Engine, EngineConfig  # noqa: E402
from bayling_local.languages import resolve  # noqa: E402
from bayling_local.translate import translation_messages  # noqa: E402


class Probe(Job):
    """Feeds given tokens (or greedy ones) and keeps each step's logits."""

    def __init__(self, prompt: list[int], steps: int, forced: list[int] | None) -> None:
        super().__init__(prompt, steps)
        self.forced = forced
        self.tokens: list[int] = []
        self.logits: list[np.ndarray] = []

    def decode_rows(self) -> list[tuple[int, int, int]]:
        return [(self.tokens[-1], len(self.prompt) + len(self.tokens) - 1, self.seq_ids[0])]

    def on_rows(self, decoder: Decoder, rows: list[int]) -> None:
        logits = decoder.logits(rows[0])
        self.logits.append(logits)
        step = len(self.tokens)
        token = self.forced[step] if self.forced is not None else int(np.argmax(logits))
        self.tokens.append(token)
        if len(self.tokens) >= self.max_new:
            self.finish("length")


def run(engine: Engine, prompts: list[list[int]], steps: int, forced, parallel: int):
    decoder = engine.reserve(cells=1, max_seqs=max(parallel, 1), unified=False)
    jobs = [Probe(p, steps, f) for p, f in zip(prompts, forced)]
    with engine.step_lock:
        decoder.drop_prefix()
        for start in range(0, len(jobs), parallel):
            for job in jobs[start : start + parallel]:
                decoder.admit(job)
            decoder.run_until_idle()
            decoder.drop_prefix()
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    engine = Engine(EngineConfig(args.gguf, threads=args.threads))
    lines = [x for x in args.input.read_text(encoding="utf-8").splitlines() if x.strip()]
    prompts = [
        engine.tokenize(engine.render(translation_messages(line, resolve("zh"))))
        for line in lines[: args.n]
    ]
    alone = run(engine, prompts, args.tokens, [None] * len(prompts), 1)
    free = run(engine, prompts, args.tokens, [None] * len(prompts), len(prompts))
    forced = run(engine, prompts, args.tokens, [a.tokens for a in alone], len(prompts))
    diffs = [
        float(np.max(np.abs(x - y)))
        for a, f in zip(alone, forced)
        for x, y in zip(a.logits, f.logits)
    ]
    print(
        json.dumps(
            {
                "model": engine.model_name,
                "quantization": engine.info.quantization,
                "sequences": len(prompts),
                "tokens": args.tokens,
                "identical_greedy": sum(a.tokens == b.tokens for a, b in zip(alone, free)),
                "max_logit_difference": max(diffs),
                "max_abs_logit": float(max(np.max(np.abs(x)) for a in alone for x in a.logits)),
            }
        )
    )


if __name__ == "__main__":
    main()
